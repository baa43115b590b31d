"""The expiry sweep: authorizations and RDAs past their validity, then (each by its own app) certifications,
request counters and stored idempotent answers.

A batch of authorizations or RDAs is one transaction of two statements, all in the database: no row travels to
Python and back, which is what lets a million lapsed authorizations expire in about a minute. The first
statement locks the due rows (SKIP LOCKED, so two sweeps never share a row); the second, with a snapshot taken
after those locks, changes them and writes their compliance-log entries (`log_insert_sql`: the same columns and
actor as every entry, hashed and chained by the database). A rerun finds nothing.
"""

import contextvars
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, transaction

from accounts.throttling import request_counters_purge
from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_insert_params, log_insert_sql
from rems.program.certifications import certifications_expire_due
from rems.program.ehr import token_uses_purge
from rems.program.idempotency import idempotency_records_purge

from .models import OPEN_PRESCRIPTION_STATUSES, DispenseStatus, PrescriptionStatus, SystemReason


def _sql_list(values):
    # Status values are constants of the code, never input.
    return ", ".join(f"'{value}'" for value in values)


_OPEN = _sql_list(OPEN_PRESCRIPTION_STATUSES)

_LOCK_DUE_PRESCRIPTIONS_SQL = f"""
SELECT coalesce(array_agg(id), '{{}}') FROM (
  SELECT p.id FROM dispensing_prescription p
   WHERE p.status IN ({_OPEN}) AND p.expires_at <= %(now)s
   ORDER BY p.expires_at LIMIT %(limit)s FOR NO KEY UPDATE SKIP LOCKED
) due
"""

_PRESCRIPTIONS_LOGGED = log_insert_sql(
    action=Action.PRESCRIPTION_EXPIRE,
    source="FROM expired e JOIN rems_program g ON g.id = e.program_id RETURNING 1",
    expressions={
        "occurred_at": "%(now)s", "outcome": f"'{PrescriptionStatus.EXPIRED}'", "program": "g.slug",
        "object_type": "'prescription'", "object_id": "e.id::text", "patient_id": "e.patient_id",
        "prescriber_id": "e.prescriber_id", "prescription_id": "e.id",
    },
)

_EXPIRE_PRESCRIPTIONS_SQL = f"""
WITH expired AS (
  UPDATE dispensing_prescription p
     SET status = '{PrescriptionStatus.EXPIRED}', status_changed_at = %(now)s, status_reason = %(validity_ended)s
   WHERE p.id = ANY(%(ids)s) AND p.status IN ({_OPEN}) AND p.expires_at <= %(now)s
  RETURNING p.id, p.program_id, p.patient_id, p.prescriber_id
), released AS (
  UPDATE dispensing_dispenseauthorization d
     SET status = '{DispenseStatus.EXPIRED}', status_changed_at = %(now)s, status_reason = %(prescription_expired)s
    FROM expired WHERE d.prescription_id = expired.id AND d.status = '{DispenseStatus.APPROVED}'
  RETURNING d.id
), logged AS (
  {_PRESCRIPTIONS_LOGGED}
)
SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM logged)
"""

# Prescriptions holding an approved RDA past its expiry, whatever the prescription's own status: prescriptions are
# locked before their RDAs, as everywhere else.
_LOCK_LAPSED_RDAS_SQL = f"""
SELECT coalesce(array_agg(id), '{{}}') FROM (
  SELECT p.id FROM dispensing_prescription p
   WHERE EXISTS (SELECT 1 FROM dispensing_dispenseauthorization d
                  WHERE d.prescription_id = p.id AND d.status = '{DispenseStatus.APPROVED}' AND d.expires_at <= %(now)s)
   LIMIT %(limit)s FOR NO KEY UPDATE OF p SKIP LOCKED
) due
"""

_RDAS_LOGGED = log_insert_sql(
    action=Action.DISPENSE_AUTHORIZATION_EXPIRE,
    source="FROM expired e JOIN dispensing_prescription p ON p.id = e.prescription_id "
           "JOIN rems_program g ON g.id = p.program_id RETURNING 1",
    expressions={
        "occurred_at": "%(now)s", "outcome": f"'{DispenseStatus.EXPIRED}'", "program": "g.slug",
        "object_type": "'dispense_authorization'", "object_id": "e.id::text", "patient_id": "p.patient_id",
        "prescriber_id": "p.prescriber_id", "pharmacy_id": "e.pharmacy_id", "prescription_id": "e.prescription_id",
        "detail": "jsonb_build_object('rda_number', e.rda_number)",
    },
)

_EXPIRE_RDAS_SQL = f"""
WITH expired AS (
  UPDATE dispensing_dispenseauthorization d
     SET status = '{DispenseStatus.EXPIRED}', status_changed_at = %(now)s, status_reason = %(not_dispensed_in_time)s
   WHERE d.prescription_id = ANY(%(ids)s) AND d.status = '{DispenseStatus.APPROVED}' AND d.expires_at <= %(now)s
  RETURNING d.id, d.rda_number, d.pharmacy_id, d.prescription_id
), freed AS (
  UPDATE dispensing_prescription p SET status = '{PrescriptionStatus.ISSUED}', status_changed_at = %(now)s
    FROM expired WHERE p.id = expired.prescription_id AND p.status = '{PrescriptionStatus.AUTHORIZED}'
  RETURNING p.id
), logged AS (
  {_RDAS_LOGGED}
)
SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM logged)
"""

_REASONS = {
    "validity_ended": SystemReason.VALIDITY_ENDED,
    "prescription_expired": SystemReason.PRESCRIPTION_EXPIRED,
    "not_dispensed_in_time": SystemReason.NOT_DISPENSED_IN_TIME,
}

# name: (lock statement, change statement)
SWEEPS = {
    "dispense_authorizations": (_LOCK_LAPSED_RDAS_SQL, _EXPIRE_RDAS_SQL),
    "prescriptions": (_LOCK_DUE_PRESCRIPTIONS_SQL, _EXPIRE_PRESCRIPTIONS_SQL),
}


def _expire_batch(statements, now, limit):
    """One batch in its own transaction: returns how many prescriptions it locked and how many rows expired
    (each with its log entry)."""
    lock_sql, change_sql = statements
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(lock_sql, {"now": now, "limit": limit})
        ids = cursor.fetchone()[0]
        if not ids:
            return 0, 0
        cursor.execute(change_sql, {**log_insert_params(), **_REASONS, "now": now, "ids": ids})
        changed, logged = cursor.fetchone()
        if changed != logged:  # cannot happen: one statement wrote both; if it ever does, nothing is kept
            raise RuntimeError(f"expired {changed} rows but logged {logged}")
    return len(ids), changed


def _sweep(statements, now, batch_size):
    total = 0
    while True:
        locked, changed = _expire_batch(statements, now, batch_size)
        total += changed
        if locked < batch_size:
            return total


def _sweep_on(workers, statements, now, batch_size):
    """The same sweep on `workers` connections at once. SKIP LOCKED gives each batch rows no other holds; a worker
    stops when it finds fewer than a batch free, and whatever another still holds, that other finishes."""
    if workers <= 1 or connection.in_atomic_block:
        # Inside the caller's transaction the other connections could wait for rows it holds while it waits for
        # them, a deadlock PostgreSQL cannot see: one connection, the caller's own.
        return _sweep(statements, now, batch_size)

    def work(context):
        try:
            return context.run(_sweep, statements, now, batch_size)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(work, [contextvars.copy_context() for _ in range(workers)]))


def expire_lapsed(*, now, batch_size=5000, workers=1):
    """Expire RDAs, prescription authorizations and certifications past their validity, in bounded batches, and
    purge what is kept only for a while (request counters, the EHRs' token ids past their tokens' expiry, stored
    idempotent answers). Rows are locked with
    SKIP LOCKED so that two sweeps never work on the same row; a rerun finds nothing. With `workers` above 1 the
    RDAs and authorizations are expired on that many connections at once (each its own transactions; inside a
    caller's transaction, on the caller's connection only). Returns the counts."""
    counts = {name: _sweep_on(workers, statements, now, batch_size) for name, statements in SWEEPS.items()}
    counts["certifications"] = certifications_expire_due(now=now, batch_size=batch_size)
    request_counters_purge(now=now)
    token_uses_purge(now=now)
    counts["idempotency_records"] = idempotency_records_purge(now=now, batch_size=batch_size)
    return counts
