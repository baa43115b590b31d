"""For auditors and program administrators: the compliance log, its exports, its verification and the
reports built on it. Read-only."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from rems.audit import log_verify
from rems.models import ComplianceLogEntry

from .access import PRESCRIBER_OFFICE, READERS, audit_events_for, get_in_scope, prescriptions_for
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

    LOOKUPS = {
        "patient": "patient_id", "prescriber": "prescriber_id", "pharmacy": "pharmacy_id",
        "prescription": "prescription_id", "program": "program", "action": "action", "outcome": "outcome",
        "occurred_after": "occurred_at__gte", "occurred_before": "occurred_at__lt",
    }

    def apply(self, queryset):
        values = self.validated_data
        for name, lookup in self.LOOKUPS.items():
            if name in values:
                queryset = queryset.filter(**{lookup: values[name]})
        if "check_code" in values:
            queryset = queryset.filter(checks__contains=[{"code": values["check_code"]}])
        if "failed_check" in values:
            queryset = queryset.filter(checks__contains=[{"code": values["failed_check"], "passed": False}])
        return queryset


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


EXPORT_FIELDS = [
    "seq", "id", "occurred_at", "recorded_at", "action", "outcome", "actor_user_id", "actor_username", "actor_role",
    "actor_prescriber_id", "actor_pharmacy_id", "program", "object_type", "object_id", "patient_id", "prescriber_id",
    "pharmacy_id", "prescription_id", "rule_set", "checks", "facts", "detail", "request_id", "chain", "chain_index",
    "entry_hash", "failed_checks",
]
_EXPORT_COLUMNS = {
    "occurred_at": """to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
    "recorded_at": """to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
    "failed_checks": "(SELECT string_agg(c->>'code', ' ') FROM jsonb_array_elements(e.checks) c "
                     "WHERE (c->>'passed')::boolean IS FALSE)",
}


def _export_sql(queryset, kind):
    """The export as one COPY statement: PostgreSQL streams it, so memory stays flat however large it is."""
    inner, params = queryset.order_by().values("seq").query.sql_with_params()
    columns = [(name, _EXPORT_COLUMNS.get(name, f"e.{name}")) for name in EXPORT_FIELDS]
    if kind == "csv":
        select = ", ".join(f"{expression} AS {name}" for name, expression in columns)
        options = "FORMAT csv, HEADER"
    else:
        select = "jsonb_build_object(" + ", ".join(f"'{name}', {expression}" for name, expression in columns) + ")::text"
        # One JSON document a line, written as it is: these quote and delimiter bytes never occur in jsonb text.
        options = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"
    sql = (f"COPY (SELECT {select} FROM rems_compliancelogentry e WHERE e.seq IN ({inner}) ORDER BY e.seq) "
           f"TO STDOUT WITH ({options})")
    return sql, params


def _export_stream(queryset, kind):
    sql, params = _export_sql(queryset, kind)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql, params) as copy:
            for block in copy:
                yield bytes(block)


class AuditEventExport(ApiView):
    """The filtered log, oldest first, streamed: `export.csv` or `export.jsonl`."""

    roles = {"GET": READERS}
    kind = "csv"

    @extend_schema(parameters=[AuditFilters], responses={200: OpenApiResponse(description="CSV or JSON Lines")})
    def get(self, request):
        queryset = _filtered(request)
        content_type = "text/csv; charset=utf-8" if self.kind == "csv" else "application/x-ndjson"
        response = StreamingHttpResponse(_export_stream(queryset, self.kind), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="compliance-log.{self.kind}"'
        return response


class VerificationOut(serializers.Serializer):
    ok = serializers.BooleanField()
    entries_checked = serializers.IntegerField()
    chains = serializers.IntegerField()
    first_break = serializers.DictField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)


class AuditVerify(ApiView):
    """Verify the hash chains of the whole log, or of the entries between `since` and `until`."""

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
        })


# --- Reconstruction -------------------------------------------------------------------------------------
class PrescriptionHistory(ApiView):
    """Everything that happened to one prescription authorization, in order, with the reasons."""

    roles = {"GET": READERS | PRESCRIBER_OFFICE}

    @extend_schema(responses=AuditEventOut(many=True))
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


class OfficeEventOut(serializers.Serializer):
    id = serializers.UUIDField()
    seq = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    action = serializers.CharField()
    outcome = serializers.CharField()
    actor_role = serializers.CharField()
    rule_set = serializers.CharField()
    checks = serializers.JSONField()


def audit_events_for_prescription(user, prescription):
    # The prescriber's office sees its own prescriptions' history; the scope check was done on the prescription.
    base = audit_events_for(user) if user.role in READERS else ComplianceLogEntry.objects.all()
    return base.filter(prescription_id=prescription.pk).order_by("seq")


# --- Reports --------------------------------------------------------------------------------------------
class ReportFilters(StrictSerializer):
    period = serializers.ChoiceField(choices=["day", "week", "month", "quarter", "year"], required=False,
                                     default="month")
    since = AwareDateTimeField(required=False)
    until = AwareDateTimeField(required=False)
    program = serializers.CharField(required=False, max_length=40)
    pharmacy = serializers.UUIDField(required=False)


_REPORT_WHERE = """
    (%(since)s::timestamptz IS NULL OR e.occurred_at >= %(since)s)
    AND (%(until)s::timestamptz IS NULL OR e.occurred_at < %(until)s)
    AND (%(program)s::text IS NULL OR e.program = %(program)s)
    AND (%(pharmacy)s::uuid IS NULL OR e.pharmacy_id = %(pharmacy)s)
"""

_DECISIONS = f"""
SELECT date_trunc(%(period)s, e.occurred_at) AS period_start, e.program,
       CASE e.action WHEN 'prescription.authorize' THEN 'prescription' ELSE 'dispense' END AS decision,
       e.outcome, count(*)
  FROM rems_compliancelogentry e
 WHERE e.action IN ('prescription.authorize', 'dispense_authorization.request') AND {_REPORT_WHERE}
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""

_FAILED_CHECKS = f"""
SELECT date_trunc(%(period)s, e.occurred_at) AS period_start, e.program,
       CASE e.action WHEN 'prescription.authorize' THEN 'prescription' ELSE 'dispense' END AS decision,
       c->>'code' AS code, count(*)
  FROM rems_compliancelogentry e CROSS JOIN LATERAL jsonb_array_elements(e.checks) c
 WHERE e.action IN ('prescription.authorize', 'dispense_authorization.request') AND e.outcome = 'denied'
   AND (c->>'passed')::boolean IS FALSE AND {_REPORT_WHERE}
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 5 DESC
"""

_TIME_TO_DISPENSE = f"""
SELECT date_trunc(%(period)s, e.occurred_at) AS period_start, e.program, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.occurred_at - a.occurred_at)) / 3600,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM e.occurred_at - a.occurred_at)) / 3600,
       avg(extract(epoch FROM e.occurred_at - a.occurred_at)) / 3600
  FROM rems_compliancelogentry e
  JOIN rems_compliancelogentry a
    ON a.prescription_id = e.prescription_id AND a.action = 'prescription.authorize' AND a.outcome = 'approved'
 WHERE e.action = 'dispense.confirm' AND {_REPORT_WHERE}
 GROUP BY 1, 2 ORDER BY 1, 2
"""

_EVENTS = f"""
SELECT date_trunc(%(period)s, e.occurred_at) AS period_start, e.program, e.action, count(*)
  FROM rems_compliancelogentry e
 WHERE e.action IN ('prescription.expire', 'dispense_authorization.reverse', 'dispense_authorization.expire',
                    'pregnancy_report.open')
   AND {_REPORT_WHERE}
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""

_EVENT_NAMES = {
    "prescription.expire": "authorizations_expired_undispensed",
    "dispense_authorization.reverse": "rdas_reversed",
    "dispense_authorization.expire": "rdas_expired",
    "pregnancy_report.open": "pregnancy_reports",
}


def report_build(*, period, since=None, until=None, program=None, pharmacy=None):
    params = {"period": period, "since": since, "until": until, "program": program, "pharmacy": pharmacy}
    with connection.cursor() as cursor:
        cursor.execute(_DECISIONS, params)
        decisions = [
            {"period_start": p, "program": prog, "decision": d, "outcome": o, "count": n}
            for p, prog, d, o, n in cursor.fetchall()
        ]
        cursor.execute(_FAILED_CHECKS, params)
        failed = [
            {"period_start": p, "program": prog, "decision": d, "code": code, "count": n}
            for p, prog, d, code, n in cursor.fetchall()
        ]
        cursor.execute(_TIME_TO_DISPENSE, params)
        time_to_dispense = [
            {"period_start": p, "program": prog, "dispenses": n, "median_hours": round(med, 2),
             "p90_hours": round(p90, 2), "mean_hours": round(float(mean), 2)}
            for p, prog, n, med, p90, mean in cursor.fetchall()
        ]
        cursor.execute(_EVENTS, params)
        events = {name: [] for name in _EVENT_NAMES.values()}
        for p, prog, action, n in cursor.fetchall():
            events[_EVENT_NAMES[action]].append({"period_start": p, "program": prog, "count": n})
    return {
        "period": period, "since": since, "until": until, "program": program, "pharmacy": pharmacy,
        "decisions": decisions, "failed_checks": failed, "time_to_dispense": time_to_dispense, **events,
    }


class Reports(ApiView):
    """Per period, program and (optionally) pharmacy: decisions by outcome and by failed check, time from
    prescription authorization to dispense, authorizations that expired undispensed, RDAs reversed or expired,
    pregnancy reports. With `pharmacy`, only what that pharmacy did (its dispense decisions and dispenses)."""

    roles = {"GET": READERS}

    @extend_schema(parameters=[ReportFilters], responses={200: OpenApiResponse(description="the report")})
    def get(self, request):
        filters = ReportFilters(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        report = report_build(
            period=values["period"], since=values.get("since"), until=values.get("until"),
            program=values.get("program"), pharmacy=str(values["pharmacy"]) if values.get("pharmacy") else None,
        )
        return Response(json.loads(json.dumps(report, cls=DjangoJSONEncoder)))
