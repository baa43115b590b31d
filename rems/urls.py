from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from dispensing import api as dispensing_api
from rems.api import audit_views, notification_views, views

handler400 = "rems.api.problems.handler400"
handler403 = "rems.api.problems.handler403"
handler404 = "rems.api.problems.handler404"
handler500 = "rems.api.problems.handler500"

v1 = "api/v1/"
urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("", include("rems.portal.urls")),
    path("admin/", admin.site.urls),
    path(f"{v1}schema/", SpectacularAPIView.as_view(), name="schema"),
    path(f"{v1}docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Registry
    path(f"{v1}programs/", views.ProgramList.as_view(), name="program-list"),
    path(f"{v1}prescribers/", views.PrescriberListCreate.as_view(), name="prescriber-list"),
    path(f"{v1}prescribers/<uuid:pk>/", views.PrescriberDetail.as_view(), name="prescriber-detail"),
    path(f"{v1}prescribers/<uuid:pk>/certifications/", views.PrescriberCertifications.as_view(),
         name="prescriber-certifications"),
    path(f"{v1}pharmacies/", views.PharmacyListCreate.as_view(), name="pharmacy-list"),
    path(f"{v1}pharmacies/<uuid:pk>/", views.PharmacyDetail.as_view(), name="pharmacy-detail"),
    path(f"{v1}pharmacies/<uuid:pk>/certifications/", views.PharmacyCertifications.as_view(),
         name="pharmacy-certifications"),
    path(f"{v1}certifications/<uuid:pk>/", views.CertificationDetail.as_view(), name="certification-detail"),
    path(f"{v1}certifications/<uuid:pk>/suspend", views.CertificationChangeStatus.as_view(action="suspend"),
         name="certification-suspend"),
    path(f"{v1}certifications/<uuid:pk>/reinstate", views.CertificationChangeStatus.as_view(action="reinstate"),
         name="certification-reinstate"),
    path(f"{v1}certifications/<uuid:pk>/revoke", views.CertificationChangeStatus.as_view(action="revoke"),
         name="certification-revoke"),
    path(f"{v1}users/", accounts_api.UserListCreate.as_view(), name="user-list"),
    path(f"{v1}users/<int:pk>/keys/", accounts_api.UserKeys.as_view(), name="user-keys"),
    path(f"{v1}users/<int:pk>/deactivate", accounts_api.UserDeactivate.as_view(), name="user-deactivate"),
    path(f"{v1}keys/<int:pk>/revoke", accounts_api.ApiKeyRevoke.as_view(), name="key-revoke"),
    # Patients
    path(f"{v1}patients/", views.PatientListCreate.as_view(), name="patient-list"),
    path(f"{v1}patients/<uuid:pk>/", views.PatientDetail.as_view(), name="patient-detail"),
    path(f"{v1}patients/<uuid:pk>/risk-category", views.PatientRiskCategory.as_view(), name="patient-risk-category"),
    path(f"{v1}patients/<uuid:pk>/suspend", views.PatientChangeStatus.as_view(action="suspend"),
         name="patient-suspend"),
    path(f"{v1}patients/<uuid:pk>/reinstate", views.PatientChangeStatus.as_view(action="reinstate"),
         name="patient-reinstate"),
    path(f"{v1}patients/<uuid:pk>/pregnancy-tests/", views.PatientPregnancyTests.as_view(),
         name="patient-pregnancy-tests"),
    path(f"{v1}patients/<uuid:pk>/attestations/", views.PatientAttestations.as_view(), name="patient-attestations"),
    path(f"{v1}patients/<uuid:pk>/surveys/", views.PatientSurveys.as_view(), name="patient-surveys"),
    # Prescriptions and dispensing
    path(f"{v1}prescriptions/", dispensing_api.PrescriptionListCreate.as_view(), name="prescription-list"),
    path(f"{v1}prescriptions/<uuid:pk>/", dispensing_api.PrescriptionDetail.as_view(), name="prescription-detail"),
    path(f"{v1}prescriptions/<uuid:pk>/cancel", dispensing_api.PrescriptionCancel.as_view(), name="prescription-cancel"),
    path(f"{v1}dispense-authorizations/", dispensing_api.DispenseAuthorizationListCreate.as_view(),
         name="rda-list"),
    path(f"{v1}dispense-authorizations/<str:rda_number>/", dispensing_api.DispenseAuthorizationDetail.as_view(),
         name="rda-detail"),
    path(f"{v1}dispense-authorizations/<str:rda_number>/dispense", dispensing_api.DispenseConfirm.as_view(),
         name="rda-dispense"),
    path(f"{v1}dispense-authorizations/<str:rda_number>/reverse", dispensing_api.DispenseReverse.as_view(),
         name="rda-reverse"),
    path(f"{v1}prescriptions/<uuid:pk>/history", audit_views.PrescriptionHistory.as_view(),
         name="prescription-history"),
    path(f"{v1}match-locks/", dispensing_api.MatchLockList.as_view(), name="match-lock-list"),
    path(f"{v1}match-locks/<int:pk>/clear", dispensing_api.MatchLockClear.as_view(), name="match-lock-clear"),
    # Compliance log and reports
    path(f"{v1}audit-events/", audit_views.AuditEventList.as_view(), name="audit-event-list"),
    path(f"{v1}audit-events/export.csv", audit_views.AuditEventExport.as_view(kind="csv"), name="audit-export-csv"),
    path(f"{v1}audit-events/export.jsonl", audit_views.AuditEventExport.as_view(kind="jsonl"),
         name="audit-export-jsonl"),
    path(f"{v1}audit-events/verify", audit_views.AuditVerify.as_view(), name="audit-verify"),
    path(f"{v1}reports/", audit_views.Reports.as_view(), name="reports"),
    # Notifications
    path(f"{v1}notifications/", notification_views.NotificationList.as_view(), name="notification-list"),
    path(f"{v1}notifications/<uuid:pk>/read", notification_views.NotificationRead.as_view(), name="notification-read"),
]
