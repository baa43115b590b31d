"""For auditors and program administrators: the compliance log, its exports, its verification and the
reports built on it. Read-only."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from rems.compliance_log.queries import REPORT_PERIODS, entries_filter, export_stream, report_build
from rems.compliance_log.verify import log_verify

from ..scoping import (
    PRESCRIBER_OFFICE,
    READERS,
    audit_events_for,
    audit_events_for_prescription,
    get_in_scope,
    prescriptions_for,
)
from .base import ApiView, AwareDateTimeField, StrictSerializer


class AuditEventOut(serializers.Serializer):
    id = serializers.UUIDField()
    seq = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField(allow_null=True, help_text="the database server's time of the insert")
    action = serializers.CharField()
    outcome = serializers.CharField()
    actor_user_id = serializers.IntegerField(allow_null=True)
    actor_username = serializers.CharField()
    actor_role = serializers.CharField()
    actor_prescriber_id = serializers.UUIDField(allow_null=True)
    actor_pharmacy_id = serializers.UUIDField(allow_null=True)
    program = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    patient_id = serializers.UUIDField(allow_null=True)
    prescriber_id = serializers.UUIDField(allow_null=True)
    pharmacy_id = serializers.UUIDField(allow_null=True)
    prescription_id = serializers.UUIDField(allow_null=True)
    rule_set = serializers.CharField()
    checks = serializers.JSONField()
    facts = serializers.JSONField()
    detail = serializers.JSONField()
    request_id = serializers.CharField()
    chain = serializers.IntegerField()
    chain_index = serializers.IntegerField()
    entry_hash = serializers.CharField()


class AuditFilters(StrictSerializer):
    patient = serializers.UUIDField(required=False)
    prescriber = serializers.UUIDField(required=False)
    pharmacy = serializers.UUIDField(required=False)
    prescription = serializers.UUIDField(required=False)
    program = serializers.CharField(required=False, max_length=40)
    action = serializers.CharField(required=False, max_length=60)
    outcome = serializers.CharField(required=False, max_length=20)
    check_code = serializers.RegexField(r"^[A-Z_]{1,60}$", required=False,
                                        help_text="entries that evaluated this check")
    failed_check = serializers.RegexField(r"^[A-Z_]{1,60}$", required=False,
                                          help_text="entries in which this check failed")
    occurred_after = AwareDateTimeField(required=False, help_text="inclusive")
    occurred_before = AwareDateTimeField(required=False, help_text="exclusive")
    cursor = serializers.CharField(required=False, max_length=500)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def apply(self, queryset):
        filters = {name: value for name, value in self.validated_data.items() if name not in ("cursor", "page_size")}
        return entries_filter(queryset, **filters)


def _filtered(request):
    filters = AuditFilters(data=request.query_params.dict())
    filters.is_valid(raise_exception=True)
    return filters.apply(audit_events_for(request.user))


class AuditEventList(ApiView):
    """Newest first. The cursor pages are stable while entries are added."""

    roles = {"GET": READERS}

    @extend_schema(parameters=[AuditFilters], responses=AuditEventOut(many=True))
    def get(self, request):
        return self.paginated(request, _filtered(request), AuditEventOut, "-seq")


class AuditEventExport(ApiView):
    """The filtered log, oldest first, streamed: `export.csv` or `export.jsonl`."""

    roles = {"GET": READERS}
    kind = "csv"

    @extend_schema(parameters=[AuditFilters], responses={
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="export.csv: CSV, a header line first"),
        (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="export.jsonl: JSON Lines"),
    })
    def get(self, request):
        queryset = _filtered(request)
        content_type = "text/csv; charset=utf-8" if self.kind == "csv" else "application/x-ndjson"
        response = StreamingHttpResponse(export_stream(queryset, self.kind), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="compliance-log.{self.kind}"'
        return response


class VerificationOut(serializers.Serializer):
    ok = serializers.BooleanField()
    entries_checked = serializers.IntegerField()
    chains = serializers.IntegerField()
    first_break = serializers.DictField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    checkpoint = serializers.CharField(allow_null=True, help_text="The newest signed checkpoint compared with.")
    contradictions = serializers.ListField(child=serializers.CharField(),
                                           help_text="Entries that checkpoint vouches for, no longer as they were.")
    checkpoint_written = serializers.CharField(allow_null=True)
    checkpoint_error = serializers.CharField(allow_null=True)
    checkpoint_stale = serializers.CharField(allow_null=True, help_text="Set when the newest checkpoint was older "
                                             "than checkpoints are written: beat stopped, or newer ones removed.")
    flagged = serializers.IntegerField(help_text="Entries whose time is far from when they were written.")
    first_flagged = serializers.DictField(allow_null=True)


class AuditVerify(ApiView):
    """Verify the hash chains of the whole log, or of the entries between `since` and `until`; the whole log also
    against its newest signed checkpoint (and a new checkpoint is written)."""

    roles = {"GET": READERS}

    class AuditVerifyFilters(StrictSerializer):
        since = AwareDateTimeField(required=False)
        until = AwareDateTimeField(required=False)

    @extend_schema(parameters=[AuditVerifyFilters], responses=VerificationOut)
    def get(self, request):
        params = self.AuditVerifyFilters(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        result = log_verify(since=params.validated_data.get("since"), until=params.validated_data.get("until"))
        first = result.first_break
        return Response({
            "ok": result.ok, "entries_checked": result.entries_checked, "chains": result.chains,
            "first_break": first.__dict__ if first else None, "since": result.since, "until": result.until,
            "checkpoint": result.checkpoint, "contradictions": list(result.contradictions),
            "checkpoint_written": result.checkpoint_written, "checkpoint_error": result.checkpoint_error,
            "checkpoint_stale": result.checkpoint_stale,
            "flagged": result.flagged,
            "first_flagged": result.first_flagged.__dict__ if result.first_flagged else None,
        })


# --- Reconstruction -------------------------------------------------------------------------------------
class OfficeEventOut(serializers.Serializer):
    id = serializers.UUIDField()
    seq = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    action = serializers.CharField()
    outcome = serializers.CharField()
    actor_role = serializers.CharField()
    rule_set = serializers.CharField()
    checks = serializers.JSONField()


class PrescriptionHistory(ApiView):
    """Everything that happened to one prescription authorization, in order, with the reasons."""

    roles = {"GET": READERS | PRESCRIBER_OFFICE}

    @extend_schema(responses=inline_serializer("PrescriptionHistory", fields={
        "prescription": serializers.UUIDField(),
        "authorization_number": serializers.CharField(),
        "status": serializers.CharField(),
        "events": serializers.ListField(child=OfficeEventOut(), help_text=(
            "in order; administrators and auditors get every field of an audit event (AuditEventOut)")),
    }))
    def get(self, request, pk):
        prescription = get_in_scope(prescriptions_for(request.user), pk=pk)
        entries = audit_events_for_prescription(request.user, prescription)
        # The prescriber's office sees what happened and why, not who at which pharmacy did it or what was known
        # about the pharmacy.
        serializer = AuditEventOut if request.user.role in READERS else OfficeEventOut
        return Response({
            "prescription": str(prescription.pk),
            "authorization_number": prescription.authorization_number,
            "status": prescription.status,
            "events": serializer(entries, many=True).data,
        })



# --- Reports --------------------------------------------------------------------------------------------
class ReportFilters(StrictSerializer):
    period = serializers.ChoiceField(choices=list(REPORT_PERIODS), required=False, default="month")
    since = AwareDateTimeField(required=False)
    until = AwareDateTimeField(required=False)
    program = serializers.CharField(required=False, max_length=40)
    pharmacy = serializers.UUIDField(required=False)


class Reports(ApiView):
    """Per period, program and (optionally) pharmacy: decisions by outcome and by failed check, time from
    prescription authorization to dispense, authorizations that expired undispensed, RDAs reversed or expired,
    pregnancy reports. With `pharmacy`, only what that pharmacy did (its dispense decisions and dispenses)."""

    roles = {"GET": READERS}

    @extend_schema(parameters=[ReportFilters], responses=inline_serializer("Report", fields={
        "period": serializers.CharField(), "since": serializers.DateTimeField(allow_null=True),
        "until": serializers.DateTimeField(allow_null=True), "program": serializers.CharField(allow_null=True),
        "pharmacy": serializers.CharField(allow_null=True),
        **{name: serializers.ListField(child=serializers.DictField()) for name in (
            "decisions", "failed_checks", "time_to_dispense", "authorizations_expired_undispensed",
            "rdas_reversed", "rdas_expired", "pregnancy_reports")},
    }))
    def get(self, request):
        filters = ReportFilters(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        report = report_build(
            period=values["period"], since=values.get("since"), until=values.get("until"),
            program=values.get("program"), pharmacy=str(values["pharmacy"]) if values.get("pharmacy") else None,
        )
        return Response(json.loads(json.dumps(report, cls=DjangoJSONEncoder)))
