"""Reading the compliance log: filters, exports and reports. Read-only; callers scope the queryset to the
reader first (`rems.interfaces.scoping`). Actions are matched through `names_for`, so that a filter or a report
finds entries written under an action's earlier names too."""

from django.db import connection
from django.db.models import Q

from .actions import Action, all_names, names_for


def entries_filter(queryset, *, patient=None, prescriber=None, pharmacy=None, prescription=None, program=None,
                   action=None, outcome=None, check_code=None, failed_check=None, occurred_after=None,
                   occurred_before=None):
    """The entries of `queryset` that match every filter given: ids, program, action (any of its names),
    outcome, a check evaluated or failed, and occurred_after <= occurred_at < occurred_before."""
    lookups = {
        "patient_id": patient, "prescriber_id": prescriber, "pharmacy_id": pharmacy,
        "prescription_id": prescription, "program": program, "outcome": outcome,
        "occurred_at__gte": occurred_after, "occurred_at__lt": occurred_before,
    }
    queryset = queryset.filter(**{lookup: value for lookup, value in lookups.items() if value is not None})
    if action is not None:
        match = Q(pk__in=[])
        for names, detail in names_for(action):
            match |= Q(action__in=names, **({"detail__contains": detail} if detail else {}))
        queryset = queryset.filter(match)
    if check_code is not None:
        queryset = queryset.filter(checks__contains=[{"code": check_code}])
    if failed_check is not None:
        queryset = queryset.filter(checks__contains=[{"code": failed_check, "passed": False}])
    return queryset


# --- Exports --------------------------------------------------------------------------------------------
EXPORT_FIELDS = [
    "seq", "id", "occurred_at", "recorded_at", "action", "outcome", "actor_user_id", "actor_username", "actor_role",
    "actor_prescriber_id", "actor_pharmacy_id", "program", "object_type", "object_id", "patient_id", "prescriber_id",
    "pharmacy_id", "prescription_id", "rule_set", "checks", "facts", "detail", "request_id", "chain", "chain_index",
    "entry_hash", "failed_checks", "content_hash", "hash_version",
]
_EXPORT_COLUMNS = {
    "occurred_at": """to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
    "recorded_at": """to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
    "failed_checks": "(SELECT string_agg(c->>'code', ' ') FROM jsonb_array_elements(e.checks) c "
                     "WHERE (c->>'passed')::boolean IS FALSE)",
}
EXPORT_KINDS = ("csv", "jsonl")


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


def export_stream(queryset, kind):
    """The entries of `queryset`, oldest first, as CSV (`csv`) or JSON Lines (`jsonl`): an iterator of bytes."""
    if kind not in EXPORT_KINDS:
        raise ValueError(f"unknown export kind {kind!r}")
    sql, params = _export_sql(queryset, kind)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(sql, params) as copy:
            for block in copy:
                yield bytes(block)


# --- Reports --------------------------------------------------------------------------------------------
_DECISION_ACTIONS = (Action.PRESCRIPTION_AUTHORIZE, Action.DISPENSE_AUTHORIZATION_REQUEST)
REPORT_PERIODS = ("day", "week", "month", "quarter", "year")

_REPORT_WHERE = """
    (%(since)s::timestamptz IS NULL OR e.occurred_at >= %(since)s)
    AND (%(until)s::timestamptz IS NULL OR e.occurred_at < %(until)s)
    AND (%(program)s::text IS NULL OR e.program = %(program)s)
    AND (%(pharmacy)s::uuid IS NULL OR e.pharmacy_id = %(pharmacy)s)
"""

_DECISION_KIND = "CASE WHEN e.action = ANY(%(prescription_names)s) THEN 'prescription' ELSE 'dispense' END"

_DECISIONS = f"""
SELECT date_trunc(%(period)s, e.occurred_at) AS period_start, e.program, {_DECISION_KIND} AS decision,
       e.outcome, count(*)
  FROM rems_compliancelogentry e
 WHERE e.action = ANY(%(decision_names)s) AND {_REPORT_WHERE}
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""

_FAILED_CHECKS = f"""
SELECT date_trunc(%(period)s, e.occurred_at) AS period_start, e.program, {_DECISION_KIND} AS decision,
       c->>'code' AS code, count(*)
  FROM rems_compliancelogentry e CROSS JOIN LATERAL jsonb_array_elements(e.checks) c
 WHERE e.action = ANY(%(decision_names)s) AND e.outcome = 'denied'
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
    ON a.prescription_id = e.prescription_id AND a.action = ANY(%(prescription_names)s) AND a.outcome = 'approved'
 WHERE e.action = ANY(%(dispense_names)s) AND {_REPORT_WHERE}
 GROUP BY 1, 2 ORDER BY 1, 2
"""

# The events a report counts, by the name of their series in the report.
_EVENT_SERIES = {
    Action.PRESCRIPTION_EXPIRE: "authorizations_expired_undispensed",
    Action.DISPENSE_AUTHORIZATION_REVERSE: "rdas_reversed",
    Action.DISPENSE_AUTHORIZATION_EXPIRE: "rdas_expired",
    Action.PREGNANCY_REPORT_OPEN: "pregnancy_reports",
}
_EVENT_NAMES = {name: series for action, series in _EVENT_SERIES.items() for name in all_names(action)}

_EVENTS = f"""
SELECT date_trunc(%(period)s, e.occurred_at) AS period_start, e.program, e.action, count(*)
  FROM rems_compliancelogentry e
 WHERE e.action = ANY(%(event_names)s) AND {_REPORT_WHERE}
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def report_build(*, period, since=None, until=None, program=None, pharmacy=None):
    """Per period and program (and, given one, only what a pharmacy did): decisions by outcome and by failed
    check, time from prescription authorization to dispense, and the counts of `_EVENT_SERIES`."""
    if period not in REPORT_PERIODS:
        raise ValueError(f"unknown report period {period!r}")
    params = {
        "period": period, "since": since, "until": until, "program": program, "pharmacy": pharmacy,
        "decision_names": all_names(*_DECISION_ACTIONS),
        "prescription_names": all_names(Action.PRESCRIPTION_AUTHORIZE),
        "dispense_names": all_names(Action.DISPENSE_AUTHORIZATION_DISPENSE),
        "event_names": sorted(_EVENT_NAMES),
    }
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
        events = {series: [] for series in _EVENT_SERIES.values()}
        for p, prog, name, n in cursor.fetchall():
            series = events[_EVENT_NAMES[name]]
            if series and series[-1]["period_start"] == p and series[-1]["program"] == prog:
                series[-1]["count"] += n  # the same event under an earlier name, in the same period
            else:
                series.append({"period_start": p, "program": prog, "count": n})
    return {
        "period": period, "since": since, "until": until, "program": program, "pharmacy": pharmacy,
        "decisions": decisions, "failed_checks": failed, "time_to_dispense": time_to_dispense, **events,
    }
