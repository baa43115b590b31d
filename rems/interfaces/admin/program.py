"""The program's records on the admin site: programs, products and rule sets (loaded from a program file),
prescribers and pharmacies (certified in a program), certifications (suspended, reinstated, revoked), patients
(suspended, reinstated) and the compliance log. Every change goes through a service, with a reason, and is
logged."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError, IntegrityError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from rems.compliance_log.models import ComplianceLogEntry
from rems.core.errors import ActionRefused
from rems.program import certifications, patients
from rems.program.models import (
    Certification,
    EnrollmentTransfer,
    Patient,
    Pharmacy,
    Prescriber,
    Product,
    Program,
    RuleSet,
)
from rems.program.programs import program_load

from .base import ProgramChoiceForm, ReadOnlyAdmin, form_action

PROGRAM_FILE_MAX_BYTES = 1024 * 1024


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
        help_text="A JSON program file, in the format of rems/program/data/pomalidomide.json.",
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
                program, loaded = program_load(
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
        certifications.certification_create(actor=actor, program=data["program"], now=now, **{party_field: party})

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
        certifications.certification_change_status(
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
        patients.patient_change_status(actor=actor, patient=patient, action=action, reason=data["reason"], now=now)

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


# --- Enrollment transfers -----------------------------------------------------------------------------------
def _transfer_action(approve, verb, past):
    def run(transfer, data, actor, now):
        patients.transfer_decide(actor=actor, transfer=transfer, approve=approve, reason=data["reason"], now=now)

    return form_action(
        f"transfer_{verb}", description=f"{verb.capitalize()} the selected transfers",
        title=f"{verb.capitalize()} enrollment transfers", done=past, run=run,
    )


@admin.register(EnrollmentTransfer)
class EnrollmentTransferAdmin(ReadOnlyAdmin):
    """A prescriber asked to enroll a patient enrolled by another office: check with the patient and both
    offices, then approve (the enrollment moves, with the new agreement) or decline, with a reason."""

    list_display = ("id", "patient", "prescriber", "risk_category", "agreement_signed_on", "state", "requested_at")
    list_filter = ("state",)
    list_select_related = ("patient", "prescriber")
    actions = [_transfer_action(True, "approve", "Approved"), _transfer_action(False, "decline", "Declined")]

    def describe(self, obj):
        return f"Enrollment transfer {obj.pk} ({obj.state})"


# --- Compliance log ---------------------------------------------------------------------------------------
@admin.register(ComplianceLogEntry)
class ComplianceLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "action", "outcome", "actor_username", "object_type", "object_id",
                    "rule_set")
    list_filter = ("action", "outcome")
    search_fields = ("object_id",)
