"""The EHRs registered to call the CDS Hooks services: listed, and registered by the program administrator with
their issuer and public key (the same service as `POST /api/v1/cds-clients/`)."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from rems.core.errors import ActionRefused
from rems.program.ehr import cds_client_register, cds_client_retire
from rems.program.models import CdsClient

from .base import ReadOnlyAdmin, form_action


class CdsClientForm(forms.Form):
    issuer = forms.CharField(max_length=255, help_text="The `iss` of the EHR's JWTs, as the EHR sends it.")
    jwk = forms.CharField(
        label="Public key (JWK)", widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text="The EHR's public key as a JSON Web Key: EC on P-384 (ES384) or RSA of 2048 bits or more "
                  "(RS384). Never the private key.")

    def clean_jwk(self):
        try:
            return json.loads(self.cleaned_data["jwk"])
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"Not valid JSON: {exc}") from None


@admin.register(CdsClient)
class CdsClientAdmin(ReadOnlyAdmin):
    list_display = ("issuer", "algorithm", "registered_at", "registered_by", "retired_at")
    list_filter = (("retired_at", admin.EmptyFieldListFilter),)
    fields = ("issuer", "algorithm", "jwk", "registered_at", "registered_by", "retired_at", "retired_reason")
    actions = [form_action(
        "cds_client_retire", description="Retire the selected EHR registrations", title="Retire EHR registrations",
        done="Retired", run=lambda client, data, actor, now: cds_client_retire(
            actor=actor, client=client, reason=data["reason"], now=now),
    )]
    readonly_fields = fields
    ordering = ("-registered_at",)
    change_list_template = "admin/rems/cdsclient/change_list.html"

    def get_urls(self):
        register = path("register/", self.admin_site.admin_view(self.register_view), name="rems_cdsclient_register")
        return [register, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_register": self.has_manage_permission(request)}
        return super().changelist_view(request, extra_context)

    def register_view(self, request):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        form = CdsClientForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                client = cds_client_register(actor=request.user, now=timezone.now(), **form.cleaned_data)
            except ActionRefused as exc:
                form.add_error(getattr(exc, "field", None) if getattr(exc, "field", None) in form.fields else None,
                               exc.message)
            else:
                self.message_user(request, f"Registered {client.issuer} ({client.algorithm}); in the compliance log "
                                           "as cds_client.register.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:rems_cdsclient_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Register an EHR",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/rems/cdsclient/register.html", context)
