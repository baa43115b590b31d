"""The program administrator's admin site. It shows the program's records; every change of state goes through a
service function, which writes its compliance-log entry in the same transaction. No model form ever saves.

Actions that change state first show an intermediate page (a reason, or the program to certify in); the
service is then called once per selected row, and a refusal is shown as a message for that row.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError, IntegrityError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Role

from . import services
from .errors import ActionRefused
from .models import Certification, ComplianceLogEntry, Patient, Pharmacy, Prescriber, Product, Program, RuleSet

REASON_MAX_LENGTH = 500  # the length of `status_reason` on certifications and patients
PROGRAM_FILE_MAX_BYTES = 1024 * 1024


def is_program_admin(user):
    # The staff flag alone is not enough: a user marked staff by mistake (an auditor, say) must not reach it.
    return bool(user.is_active and user.is_staff and getattr(user, "role", None) == Role.ADMIN)


admin.site.has_permission = lambda request: is_program_admin(request.user)
admin.site.site_header = "REMS program administration"
admin.site.site_title = "REMS administration"
admin.site.index_title = "Program records"
# Access follows the role, not Django's groups and permissions: a group would only suggest otherwise.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Views for the program administrator; never an add, change or delete form that saves."""

    def has_module_permission(self, request):
        return is_program_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_program_admin(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_permission(self, request):
        """Checked for the actions (`allowed_permissions = ("manage",)`) and the upload view."""
        return is_program_admin(request.user)

    def describe(self, obj):
        """How a row is named in messages and on the intermediate page."""
        return str(obj)


# --- Actions with an intermediate page --------------------------------------------------------------------
class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required. Written to the compliance log with the change.",
    )


class ProgramChoiceForm(forms.Form):
    program = forms.ModelChoiceField(queryset=Program.objects.order_by("slug"), empty_label=None)


def confirm_and_run(modeladmin, request, queryset, *, form_class, title, done, run):
    """Show the intermediate page until its form is valid, then call `run(obj, data, actor, now)` for each row.

    A refused row is reported and the others go on: each service call is its own transaction, so a refusal
    leaves that row exactly as it was.
    """
    form = form_class(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        rows = list(queryset)
        if not rows:
            # Rows changed since the list was shown (a lock cleared meanwhile, say) fall out of its filter.
            modeladmin.message_user(request, "None of the selected rows is listed any more; nothing was changed.",
                                    messages.WARNING)
            return None
        now, succeeded = timezone.now(), 0
        for obj in rows:
            try:
                run(obj, form.cleaned_data, request.user, now)
            except ActionRefused as exc:
                modeladmin.message_user(request, f"{modeladmin.describe(obj)}: {exc.message}", messages.ERROR)
            else:
                succeeded += 1
        if succeeded:
            modeladmin.message_user(
                request, f"{done} {succeeded} {model_ngettext(modeladmin.opts, succeeded)}; "
                         "each change is in the compliance log.", messages.SUCCESS,
            )
        return None
    opts = modeladmin.opts
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "form": form,
        "rows": [(obj.pk, modeladmin.describe(obj)) for obj in queryset],
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, "admin/rems/action_confirmation.html", context)


def form_action(name, *, description, title, done, run, form_class=ReasonForm):
    """An admin action named `name` that asks for `form_class` first, then calls `run` per row."""

    def action(modeladmin, request, queryset):
        return confirm_and_run(modeladmin, request, queryset, form_class=form_class, title=title, done=done,
                               run=run)

    action.__name__ = name
    return admin.action(description=description, permissions=["manage"])(action)


# --- Programs, products, rule sets ------------------------------------------------------------------------
@admin.register(Program)
class ProgramAdmin(ReadOnlyAdmin):
    list_display = ("slug", "name")


@admin.register(Product)
class ProductAdmin(ReadOnlyAdmin):
    list_display = ("ndc", "name", "strength_mg", "program")
    list_select_related = ("program",)


def _pretty_json(value):
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def _reject_constant(name):
    raise ValueError(f"{name} is not a JSON number")


class ProgramFileForm(forms.Form):
    program_file = forms.FileField(
        label="Program file",
        help_text="A JSON program file, in the format of rems/programs/pomalidomide.json.",
    )

    def clean_program_file(self):
        upload = self.cleaned_data["program_file"]
        if upload.size > PROGRAM_FILE_MAX_BYTES:
            raise ValidationError(f"The file is larger than {PROGRAM_FILE_MAX_BYTES // 1024} KiB.")
        try:
            data = json.loads(upload.read().decode("utf-8"), parse_constant=_reject_constant)
        except ValueError as exc:  # bad UTF-8 or bad JSON
            raise ValidationError(f"The file is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValidationError("The file must hold one JSON object: the program.")
        return data


@admin.register(RuleSet)
class RuleSetAdmin(ReadOnlyAdmin):
    """Rule sets are read-only for good: a decision must stay explainable under the rules it was made with, so
    new rules arrive as a new version, loaded from a program file."""

    list_display = ("program", "version", "effective_at", "loaded_at")
    list_filter = ("program",)
    list_select_related = ("program",)
    ordering = ("program__slug", "-effective_at")
    fields = ("program", "version", "effective_at", "loaded_at", "parameters_display", "sources_display")
    readonly_fields = fields
    change_list_template = "admin/rems/ruleset/change_list.html"

    @admin.display(description="parameters")
    def parameters_display(self, obj):
        return _pretty_json(obj.parameters)

    @admin.display(description="sources")
    def sources_display(self, obj):
        return _pretty_json(obj.sources)

    def get_urls(self):
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="rems_ruleset_upload")
        return [upload, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_upload": self.has_manage_permission(request)}
        return super().changelist_view(request, extra_context)

    def upload_view(self, request):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        form = ProgramFileForm(request.POST, request.FILES) if request.method == "POST" else ProgramFileForm()
        if form.is_bound and form.is_valid():
            try:
                program, loaded = services.program_load(
                    actor=request.user, data=form.cleaned_data["program_file"], now=timezone.now()
                )
            except ActionRefused as exc:
                form.add_error(None, f"{exc.message} Nothing was loaded.")
            except IntegrityError:
                form.add_error(None, "A rule set in the file takes effect at the same moment as one already loaded "
                                     "for the program, or the file repeats a version. Nothing was loaded.")
            except DataError:
                form.add_error(None, "A value in the file is too long or out of range. Nothing was loaded.")
            # program_load reads the file's structure as it goes: a missing key or a wrong type surfaces here.
            except (KeyError, TypeError, AttributeError, ValueError, ValidationError) as exc:
                form.add_error(None, f"The file is not a valid program file ({type(exc).__name__}: {exc}). "
                                     "Nothing was loaded.")
            else:
                if loaded:
                    self.message_user(request, f"Loaded {', '.join(loaded)}; each is in the compliance log as "
                                               "rule_set.load.", messages.SUCCESS)
                else:
                    self.message_user(request, f"{program.slug}: every rule set in the file is already loaded; "
                                               "nothing changed.", messages.INFO)
                return HttpResponseRedirect(reverse("admin:rems_ruleset_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Load rule sets from a program file",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/rems/ruleset/upload.html", context)


# --- Prescribers and pharmacies ---------------------------------------------------------------------------
def _certify(party_field):
    def run(party, data, actor, now):
        services.certification_create(actor=actor, program=data["program"], now=now, **{party_field: party})

    return form_action(
        "certify", description="Certify the selected %(verbose_name_plural)s in a program",
        title="Certify in a program", done="Certified", run=run, form_class=ProgramChoiceForm,
    )


@admin.register(Prescriber)
class PrescriberAdmin(ReadOnlyAdmin):
    list_display = ("npi", "last_name", "first_name", "created_at")
    search_fields = ("npi", "last_name")
    actions = [_certify("prescriber")]


@admin.register(Pharmacy)
class PharmacyAdmin(ReadOnlyAdmin):
    list_display = ("ncpdp_id", "npi", "name", "created_at")
    search_fields = ("ncpdp_id", "npi", "name")
    actions = [_certify("pharmacy")]


# --- Certifications ---------------------------------------------------------------------------------------
def _certification_action(action, past):
    def run(certification, data, actor, now):
        services.certification_change_status(
            actor=actor, certification=certification, action=action, reason=data["reason"], now=now
        )

    return form_action(
        f"certification_{action}", description=f"{action.capitalize()} the selected certifications",
        title=f"{action.capitalize()} certifications", done=past, run=run,
    )


@admin.register(Certification)
class CertificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "program", "prescriber", "pharmacy", "status", "expires_at", "status_reason")
    list_filter = ("status", "program")
    list_select_related = ("program", "prescriber", "pharmacy")
    search_fields = ("prescriber__npi", "pharmacy__ncpdp_id", "pharmacy__npi")
    actions = [
        _certification_action("suspend", "Suspended"),
        _certification_action("reinstate", "Reinstated"),
        _certification_action("revoke", "Revoked"),
    ]

    def describe(self, obj):
        return f"{obj.program.slug} certification of {obj.prescriber or obj.pharmacy} ({obj.status})"


# --- Patients ---------------------------------------------------------------------------------------------
def _patient_action(action, past):
    def run(patient, data, actor, now):
        services.patient_change_status(actor=actor, patient=patient, action=action, reason=data["reason"], now=now)

    return form_action(
        f"patient_{action}", description=f"{action.capitalize()} the selected enrollments",
        title=f"{action.capitalize()} patient enrollments", done=past, run=run,
    )


@admin.register(Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = ("id", "program", "prescriber", "risk_category", "status", "enrolled_at")
    list_filter = ("status", "risk_category")
    list_select_related = ("program", "prescriber")
    actions = [_patient_action("suspend", "Suspended"), _patient_action("reinstate", "Reinstated")]

    def describe(self, obj):
        # By program id only, as in the compliance log: messages never name a patient.
        return f"Patient {obj.pk} ({obj.status})"


# --- Compliance log ---------------------------------------------------------------------------------------
@admin.register(ComplianceLogEntry)
class ComplianceLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "action", "outcome", "actor_username", "object_type", "object_id",
                    "rule_set")
    list_filter = ("action", "outcome")
    search_fields = ("object_id",)
