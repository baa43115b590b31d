"""The admin site shows the program's records; changes of state go through the services (and so the log),
never through raw model edits."""

from django.contrib import admin, messages
from django.utils import timezone

from . import services
from .errors import ActionRefused
from .models import Certification, ComplianceLogEntry, Patient, Pharmacy, Prescriber, Product, Program, RuleSet


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Program)
class ProgramAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name")


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    list_display = ("ndc", "name", "strength_mg", "program")


@admin.register(RuleSet)
class RuleSetAdmin(ReadOnlyAdmin):
    list_display = ("program", "version", "effective_at", "loaded_at")


@admin.register(Prescriber)
class PrescriberAdmin(ReadOnlyAdmin):
    list_display = ("npi", "last_name", "first_name", "created_at")
    search_fields = ("npi", "last_name")


@admin.register(Pharmacy)
class PharmacyAdmin(ReadOnlyAdmin):
    list_display = ("ncpdp_id", "npi", "name", "created_at")
    search_fields = ("ncpdp_id", "npi", "name")


def _change_status(action):
    def run(modeladmin, request, queryset):
        for certification in queryset:
            try:
                services.certification_change_status(
                    actor=request.user, certification=certification, action=action,
                    reason=f"{action}d from the admin site", now=timezone.now(),
                )
            except ActionRefused as exc:
                messages.error(request, f"{certification.pk}: {exc.message}")

    run.short_description = f"{action.capitalize()} the selected certifications"
    run.__name__ = f"certification_{action}"
    return run


@admin.register(Certification)
class CertificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "program", "prescriber", "pharmacy", "status", "expires_at")
    list_filter = ("status", "program")
    actions = [_change_status("suspend"), _change_status("reinstate"), _change_status("revoke")]

    def has_change_permission(self, request, obj=None):
        # The actions need the change permission; the form itself stays read-only.
        return obj is None and request.user.is_superuser


@admin.register(Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = ("id", "program", "prescriber", "risk_category", "status", "enrolled_at")
    list_filter = ("status", "risk_category")


@admin.register(ComplianceLogEntry)
class ComplianceLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "action", "outcome", "actor_username", "rule_set")
    list_filter = ("action", "outcome")
