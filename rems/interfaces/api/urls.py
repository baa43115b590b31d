"""The API's routes, under /api/v1/ (`rems.config.urls`)."""

from django.urls import path

from . import account_views, audit_views, dispensing_views, notification_views, program_views

urlpatterns = [
    # Registry
    path("programs/", program_views.ProgramList.as_view(), name="program-list"),
    path("programs/<slug:slug>/rule-sets/", program_views.ProgramRuleSets.as_view(), name="program-rule-sets"),
    path("prescribers/", program_views.PrescriberListCreate.as_view(), name="prescriber-list"),
    path("prescribers/<uuid:pk>/", program_views.PrescriberDetail.as_view(), name="prescriber-detail"),
    path("prescribers/<uuid:pk>/certifications/", program_views.PrescriberCertifications.as_view(),
         name="prescriber-certifications"),
    path("pharmacies/", program_views.PharmacyListCreate.as_view(), name="pharmacy-list"),
    path("pharmacies/<uuid:pk>/", program_views.PharmacyDetail.as_view(), name="pharmacy-detail"),
    path("pharmacies/<uuid:pk>/certifications/", program_views.PharmacyCertifications.as_view(),
         name="pharmacy-certifications"),
    path("certifications/<uuid:pk>/", program_views.CertificationDetail.as_view(), name="certification-detail"),
    path("certifications/<uuid:pk>/suspend", program_views.CertificationChangeStatus.as_view(action="suspend"),
         name="certification-suspend"),
    path("certifications/<uuid:pk>/reinstate", program_views.CertificationChangeStatus.as_view(action="reinstate"),
         name="certification-reinstate"),
    path("certifications/<uuid:pk>/revoke", program_views.CertificationChangeStatus.as_view(action="revoke"),
         name="certification-revoke"),
    path("users/", account_views.UserListCreate.as_view(), name="user-list"),
    path("users/<int:pk>/keys/", account_views.UserKeys.as_view(), name="user-keys"),
    path("users/<int:pk>/deactivate", account_views.UserDeactivate.as_view(), name="user-deactivate"),
    path("keys/<int:pk>/revoke", account_views.ApiKeyRevoke.as_view(), name="key-revoke"),
    # Patients
    path("patients/", program_views.PatientListCreate.as_view(), name="patient-list"),
    path("patients/<uuid:pk>/", program_views.PatientDetail.as_view(), name="patient-detail"),
    path("patients/<uuid:pk>/risk-category", program_views.PatientRiskCategory.as_view(), name="patient-risk-category"),
    path("patients/<uuid:pk>/suspend", program_views.PatientChangeStatus.as_view(action="suspend"),
         name="patient-suspend"),
    path("patients/<uuid:pk>/reinstate", program_views.PatientChangeStatus.as_view(action="reinstate"),
         name="patient-reinstate"),
    path("patients/<uuid:pk>/pregnancy-tests/", program_views.PatientPregnancyTests.as_view(),
         name="patient-pregnancy-tests"),
    path("patients/<uuid:pk>/attestations/", program_views.PatientAttestations.as_view(), name="patient-attestations"),
    path("patients/<uuid:pk>/surveys/", program_views.PatientSurveys.as_view(), name="patient-surveys"),
    # Prescriptions and dispensing
    path("prescriptions/", dispensing_views.PrescriptionListCreate.as_view(), name="prescription-list"),
    path("prescriptions/<uuid:pk>/", dispensing_views.PrescriptionDetail.as_view(), name="prescription-detail"),
    path("prescriptions/<uuid:pk>/cancel", dispensing_views.PrescriptionCancel.as_view(), name="prescription-cancel"),
    path("dispense-authorizations/", dispensing_views.DispenseAuthorizationListCreate.as_view(),
         name="rda-list"),
    path("dispense-authorizations/<str:rda_number>/", dispensing_views.DispenseAuthorizationDetail.as_view(),
         name="rda-detail"),
    path("dispense-authorizations/<str:rda_number>/dispense", dispensing_views.DispenseConfirm.as_view(),
         name="rda-dispense"),
    path("dispense-authorizations/<str:rda_number>/reverse", dispensing_views.DispenseReverse.as_view(),
         name="rda-reverse"),
    path("prescriptions/<uuid:pk>/history", audit_views.PrescriptionHistory.as_view(),
         name="prescription-history"),
    path("match-locks/", dispensing_views.MatchLockList.as_view(), name="match-lock-list"),
    path("match-locks/<int:pk>/clear", dispensing_views.MatchLockClear.as_view(), name="match-lock-clear"),
    # Compliance log and reports
    path("audit-events/", audit_views.AuditEventList.as_view(), name="audit-event-list"),
    path("audit-events/export.csv", audit_views.AuditEventExport.as_view(kind="csv"), name="audit-export-csv"),
    path("audit-events/export.jsonl", audit_views.AuditEventExport.as_view(kind="jsonl"),
         name="audit-export-jsonl"),
    path("audit-events/verify", audit_views.AuditVerify.as_view(), name="audit-verify"),
    path("reports/", audit_views.Reports.as_view(), name="reports"),
    # Notifications
    path("notifications/", notification_views.NotificationList.as_view(), name="notification-list"),
    path("notifications/<uuid:pk>/read", notification_views.NotificationRead.as_view(), name="notification-read"),
]
