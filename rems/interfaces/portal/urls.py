from django.urls import path

from . import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login", views.LoginView.as_view(), name="login"),
    path("logout", views.LogoutView.as_view(), name="logout"),
    # Prescriber's office
    path("patients/", views.patient_list, name="patients"),
    path("patients/new", views.patient_enroll, name="patient-enroll"),
    path("patients/<uuid:pk>/", views.patient_detail, name="patient"),
    path("patients/<uuid:pk>/pregnancy-tests", views.pregnancy_test_record, name="patient-test"),
    path("patients/<uuid:pk>/attestations", views.attestation_record, name="patient-attestation"),
    path("patients/<uuid:pk>/surveys", views.survey_record, name="patient-survey"),
    path("patients/<uuid:pk>/authorize", views.prescription_authorize, name="patient-authorize"),
    path("patients/<uuid:pk>/decisions/<uuid:decision>", views.patient_decision, name="patient-decision"),
    path("prescriptions/<uuid:pk>/", views.prescription_detail, name="prescription"),
    path("prescriptions/<uuid:pk>/cancel", views.prescription_cancel, name="prescription-cancel"),
    # Pharmacy
    path("counter/", views.counter, name="counter"),
    path("counter/decisions/<uuid:decision>", views.counter_decision, name="counter-decision"),
    path("counter/product", views.counter_product, name="counter-product"),
    path("dispenses/", views.dispense_list, name="dispenses"),
    path("dispenses/<str:rda_number>/", views.rda_detail, name="rda"),
    path("dispenses/<str:rda_number>/dispense", views.rda_dispense, name="rda-dispense"),
    path("dispenses/<str:rda_number>/reverse", views.rda_reverse, name="rda-reverse"),
    # Auditors and program administrators
    path("audit/", views.audit_search, name="audit"),
    path("audit/export.<str:kind>", views.audit_export, name="audit-export"),
    path("reports/", views.report, name="reports"),
]
