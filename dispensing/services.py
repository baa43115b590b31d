"""Prescription authorizations and pharmacy dispense authorizations.

Each function here is one transaction that loads the facts, asks the gate engine, writes the result and the
compliance-log entry. Races are settled by the database: a conditional UPDATE that changes a row only from
the state the decision saw, and partial unique indexes behind it.
"""

import contextvars
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from accounts.models import RequestCounter, Role, User
from rems import gates
from rems.audit import log_entry_write, request_id_var
from rems.errors import ActionRefused
from rems.identifiers import DISPENSE_PREFIX, PRESCRIPTION_PREFIX, authorization_number_new
from rems.models import (
    Attestation,
    AttestationKind,
    Certification,
    IdempotencyRecord,
    NotificationKind,
    Patient,
    PatientSurvey,
    PregnancyTest,
    Product,
    Status,
)
from rems.notifications import notification_create
from rems.selectors import certification_fact, certification_facts, rule_set_in_force
from rems.services import certification_expire

from .models import DispenseAuthorization, DispenseStatus, MatchLock, MatchLockKind, Prescription, PrescriptionStatus

# How many recent pregnancy tests a decision reads at most: the lookback window is at most a few weeks, so a
# history of any length costs the same.
RECENT_TESTS_LIMIT = 100
IDEMPOTENCY_RETENTION = timedelta(hours=24)


def _patient_fact(patient):
    return gates.PatientFact(
        status=patient.status,
        status_reason=patient.status_reason,
        risk_category=patient.risk_category,
        date_of_birth=patient.date_of_birth,
        agreement_signed_on=patient.agreement_signed_on,
        irregular_cycles=patient.irregular_cycles,
        therapy_started_at=patient.therapy_started_at,
    )


def _recent_tests(patient_id, rule_set, now):
    if rule_set.parameters is None:
        return ()
    since = now - timedelta(days=rule_set.parameters.pregnancy_test_lookback_days)
    rows = (
        PregnancyTest.objects.filter(patient_id=patient_id, collected_at__gte=since, collected_at__lte=now)
        .order_by("-collected_at")
        .values_list("collected_at", "result", "sensitivity_miu_ml")[:RECENT_TESTS_LIMIT]
    )
    return tuple(gates.PregnancyTestFact(collected_at=c, result=r, sensitivity_miu_ml=s) for c, r, s in rows)


def _latest_attestation(patient_id, kind):
    row = (
        Attestation.objects.filter(patient_id=patient_id, kind=kind)
        .order_by("-attested_at")
        .values("attested_at", "methods", "abstinence", "started_on")
        .first()
    )
    if row is None:
        return None
    return gates.AttestationFact(
        kind=kind, attested_at=row["attested_at"], methods=tuple(row["methods"]), abstinence=row["abstinence"],
        started_on=row["started_on"],
    )


def _patient_history(patient, rule_set, now):
    reproductive = male = True
    if rule_set.parameters is not None:
        reproductive = patient.risk_category in rule_set.parameters.reproductive_potential_categories
        male = patient.risk_category in rule_set.parameters.male_categories
    # The latest prescription not cancelled, and the open one: only one can be open, and it is then the latest
    # issued, so one query of the two latest rows holds both.
    latest = list(
        Prescription.objects.filter(patient=patient, program_id=patient.program_id)
        .exclude(status=PrescriptionStatus.CANCELLED)
        .order_by("-issued_at")
        .values("issued_at", "status", "authorization_number", "expires_at")[:2]
    )
    previous = latest[0] if latest else None
    open_rx = next(
        ({"authorization_number": r["authorization_number"], "expires_at": r["expires_at"]} for r in latest
         if r["status"] in (PrescriptionStatus.ISSUED, PrescriptionStatus.AUTHORIZED)),
        None,
    )
    # The supply actually dispensed, which may be less than the prescription allowed.
    last_dispense = (
        DispenseAuthorization.objects.filter(
            prescription__patient=patient, prescription__program_id=patient.program_id,
            status=DispenseStatus.DISPENSED,
        )
        .order_by("-dispensed_at")
        .values("dispensed_at", "days_supply")
        .first()
    )
    survey = (
        PatientSurvey.objects.filter(patient=patient, completed_at__lte=now)
        .order_by("-completed_at")
        .values("completed_at")
        .first()
    )
    return gates.PatientHistory(
        tests=_recent_tests(patient.pk, rule_set, now) if reproductive else (),
        contraception=_latest_attestation(patient.pk, AttestationKind.CONTRACEPTION) if reproductive else None,
        male_counseling=_latest_attestation(patient.pk, AttestationKind.MALE_COUNSELING) if male else None,
        latest_survey=gates.SurveyFact(completed_at=survey["completed_at"]) if survey else None,
        previous_prescription_issued_at=previous["issued_at"] if previous else None,
        open_prescription=gates.OpenPrescriptionFact(**open_rx) if open_rx else None,
        last_dispense=gates.DispenseFact(**last_dispense) if last_dispense else None,
    )


def _new_number(model, field, prefix):
    # 50 random bits: a collision is astronomically rare, but never silently overwrites.
    while True:
        number = authorization_number_new(prefix)
        if not model.objects.filter(**{field: number}).exists():
            return number


def _checks_json(decision):
    return [gates.as_dict(c) for c in decision.checks]


# --- Prescription authorization -------------------------------------------------------------------------
def _expire_lapsed_open_prescriptions(*, patient, now):
    """An open authorization past its validity is expired here, so that a decision never depends on the
    periodic sweep having run."""
    lapsed = list(
        Prescription.objects.filter(
            patient=patient, status__in=[PrescriptionStatus.ISSUED, PrescriptionStatus.AUTHORIZED], expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    for prescription_id in lapsed:
        prescription_expire(prescription_id=prescription_id, now=now)


@transaction.atomic
def prescription_authorize(*, actor, patient, ndc, quantity, days_supply, now):
    """Run the prescriber survey for `patient` and, when every check passes, issue an authorization number.
    Returns (decision, log entry, prescription or None)."""
    # One decision per patient at a time: the open-prescription check and the insert cannot interleave.
    # Only the patient row: locking the program row too would make every decision in the program wait for one
    # another, and deadlock with the foreign-key checks of other transactions at their commit.
    # FOR NO KEY UPDATE: it still queues decisions for the patient, but not the foreign-key checks of records
    # that merely point at the patient.
    patient = (Patient.objects.select_for_update(of=("self",), no_key=True).select_related("program")
               .get(pk=patient.pk))
    program = patient.program
    rule_set = rule_set_in_force(program=program, now=now)
    product = Product.objects.filter(ndc=ndc, program=program).first()
    history = _patient_history(patient, rule_set, now)
    if history.open_prescription is not None and history.open_prescription.expires_at <= now:
        # The open authorization has lapsed: expire it now rather than wait for the sweep.
        _expire_lapsed_open_prescriptions(patient=patient, now=now)
    facts = gates.PrescriptionFacts(
        rule_set=rule_set,
        prescriber_certification=certification_fact(program_id=program.pk, prescriber_id=patient.prescriber_id),
        patient=_patient_fact(patient),
        history=history,
        request=gates.PrescriptionRequestFact(
            ndc=ndc, product_in_program=product is not None, quantity=quantity, days_supply=days_supply
        ),
    )
    decision = gates.prescription_decide(facts=facts, now=now)
    entry_id = uuid.uuid4()
    prescription = None
    if decision.approved:
        prescription = Prescription.objects.create(
            authorization_number=_new_number(Prescription, "authorization_number", PRESCRIPTION_PREFIX),
            patient=patient, prescriber_id=patient.prescriber_id, program=program, product=product,
            quantity=quantity, days_supply=days_supply, risk_category=patient.risk_category,
            rule_set=decision.rule_set, status=PrescriptionStatus.ISSUED, issued_at=now,
            expires_at=decision.expires_at, status_changed_at=now, decision_id=entry_id,
        )
    entry = log_entry_write(
        entry_id=entry_id, actor=actor, action="prescription.authorize", outcome=decision.status,
        object_type="prescription", object_id=prescription.pk if prescription else "",
        program=program.slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id,
        prescription_id=prescription.pk if prescription else None, rule_set=decision.rule_set,
        checks=_checks_json(decision), facts=gates.facts_for_log(facts), now=now,
        detail={
            "ndc": ndc, "quantity": quantity, "days_supply": days_supply,
            "authorization_number": prescription.authorization_number if prescription else None,
            "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
        },
    )
    return decision, entry, prescription


class CannotCancel(ActionRefused):
    pass


@transaction.atomic
def prescription_cancel(*, actor, prescription, reason, now):
    changed = Prescription.objects.filter(pk=prescription.pk, status=PrescriptionStatus.ISSUED).update(
        status=PrescriptionStatus.CANCELLED, status_changed_at=now, status_reason=reason
    )
    prescription.refresh_from_db()
    if not changed:
        extra = " A pharmacy holds a dispense authorization for it; it must be reversed first." if (
            prescription.status == PrescriptionStatus.AUTHORIZED) else ""
        raise CannotCancel(f"A {prescription.status} prescription authorization cannot be cancelled.{extra}")
    log_entry_write(
        actor=actor, action="prescription.cancel", outcome=PrescriptionStatus.CANCELLED, object_type="prescription",
        object_id=prescription.pk, program=prescription.program.slug, patient_id=prescription.patient_id,
        prescriber_id=prescription.prescriber_id, prescription_id=prescription.pk, now=now,
        detail={"reason": reason},
    )
    return prescription


# A sweep's batch in one statement: the due rows are locked (SKIP LOCKED, so two sweeps never share a row), changed,
# and each gets its compliance-log entry, all in the database: no row travels to Python and back, which is what
# lets a million lapsed authorizations expire in about a minute. The log entries are the same as the single-row
# services write (the trigger hashes and chains each one).
_LOG_COLUMNS = """id, occurred_at, action, outcome, actor_user_id, actor_username, actor_role, program, object_type,
  object_id, patient_id, prescriber_id, pharmacy_id, prescription_id, rule_set, checks, facts, detail, request_id"""

# Each batch is two statements in one transaction. The first locks the due prescriptions (SKIP LOCKED, so two
# sweeps never share a row). The second, with a snapshot taken after those locks, changes them and their RDAs:
# an RDA committed just before the lock is seen and expired with its authorization.
_LOCK_DUE_PRESCRIPTIONS_SQL = """
SELECT coalesce(array_agg(id), '{}') FROM (
  SELECT p.id FROM dispensing_prescription p
   WHERE p.status IN ('issued', 'authorized') AND p.expires_at <= %(now)s
   ORDER BY p.expires_at LIMIT %(limit)s FOR NO KEY UPDATE SKIP LOCKED
) due
"""

_EXPIRE_PRESCRIPTIONS_SQL = f"""
WITH expired AS (
  UPDATE dispensing_prescription p
     SET status = 'expired', status_changed_at = %(now)s, status_reason = 'validity ended'
   WHERE p.id = ANY(%(ids)s) AND p.status IN ('issued', 'authorized') AND p.expires_at <= %(now)s
  RETURNING p.id, p.program_id, p.patient_id, p.prescriber_id
), released AS (
  UPDATE dispensing_dispenseauthorization d
     SET status = 'expired', status_changed_at = %(now)s, status_reason = 'prescription authorization expired'
    FROM expired WHERE d.prescription_id = expired.id AND d.status = 'approved'
  RETURNING d.id
), logged AS (
  INSERT INTO rems_compliancelogentry ({_LOG_COLUMNS})
  SELECT gen_random_uuid(), %(now)s, 'prescription.expire', 'expired', NULL, 'system', 'system', g.slug,
         'prescription', e.id::text, e.patient_id, e.prescriber_id, NULL, e.id, '', '[]', '{{}}', '{{}}', %(request_id)s
    FROM expired e JOIN rems_program g ON g.id = e.program_id
  RETURNING 1
)
SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM logged)
"""

# Prescriptions holding an approved RDA past its expiry, whatever the prescription's own status: prescriptions are
# locked before their RDAs, as everywhere else.
_LOCK_LAPSED_RDAS_SQL = """
SELECT coalesce(array_agg(id), '{}') FROM (
  SELECT p.id FROM dispensing_prescription p
   WHERE EXISTS (SELECT 1 FROM dispensing_dispenseauthorization d
                  WHERE d.prescription_id = p.id AND d.status = 'approved' AND d.expires_at <= %(now)s)
   LIMIT %(limit)s FOR NO KEY UPDATE OF p SKIP LOCKED
) due
"""

_EXPIRE_RDAS_SQL = f"""
WITH expired AS (
  UPDATE dispensing_dispenseauthorization d
     SET status = 'expired', status_changed_at = %(now)s, status_reason = 'not dispensed in time'
   WHERE d.prescription_id = ANY(%(ids)s) AND d.status = 'approved' AND d.expires_at <= %(now)s
  RETURNING d.id, d.rda_number, d.pharmacy_id, d.prescription_id
), freed AS (
  UPDATE dispensing_prescription p SET status = 'issued', status_changed_at = %(now)s
    FROM expired WHERE p.id = expired.prescription_id AND p.status = 'authorized'
  RETURNING p.id
), logged AS (
  INSERT INTO rems_compliancelogentry ({_LOG_COLUMNS})
  SELECT gen_random_uuid(), %(now)s, 'dispense_authorization.expire', 'expired', NULL, 'system', 'system', g.slug,
         'dispense_authorization', e.id::text, p.patient_id, p.prescriber_id, e.pharmacy_id, e.prescription_id, '',
         '[]', '{{}}', jsonb_build_object('rda_number', e.rda_number), %(request_id)s
    FROM expired e JOIN dispensing_prescription p ON p.id = e.prescription_id JOIN rems_program g ON g.id = p.program_id
  RETURNING 1
)
SELECT (SELECT count(*) FROM expired), (SELECT count(*) FROM logged)
"""

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
        cursor.execute(change_sql, {"now": now, "ids": ids, "request_id": request_id_var.get()})
        changed, logged = cursor.fetchone()
        if changed != logged:  # cannot happen: one statement wrote both; if it ever does, nothing is kept
            raise RuntimeError(f"expired {changed} rows but logged {logged}")
    return len(ids), changed


def prescription_expire(*, prescription_id, now):
    """Expire an authorization past its validity; does nothing if it is no longer open or still valid."""
    changed = Prescription.objects.filter(
        pk=prescription_id, status__in=[PrescriptionStatus.ISSUED, PrescriptionStatus.AUTHORIZED], expires_at__lte=now
    ).update(status=PrescriptionStatus.EXPIRED, status_changed_at=now, status_reason="validity ended")
    if changed:
        DispenseAuthorization.objects.filter(prescription_id=prescription_id, status=DispenseStatus.APPROVED).update(
            status=DispenseStatus.EXPIRED, status_changed_at=now, status_reason="prescription authorization expired"
        )
        row = Prescription.objects.filter(pk=prescription_id).values(
            "program__slug", "patient_id", "prescriber_id").get()
        log_entry_write(
            actor=None, action="prescription.expire", outcome=PrescriptionStatus.EXPIRED, object_type="prescription",
            object_id=prescription_id, program=row["program__slug"], patient_id=row["patient_id"],
            prescriber_id=row["prescriber_id"], prescription_id=prescription_id, now=now,
        )
    return changed


# --- Dispense authorization -----------------------------------------------------------------------------
def _lock_patient(patient_id):
    return (Patient.objects.select_for_update(no_key=True).filter(pk=patient_id)
            .values_list("status", flat=True).get())


def _lock_prescription(prescription_id):
    return (Prescription.objects.select_for_update(no_key=True).filter(pk=prescription_id)
            .values_list("status", flat=True).get())


def rda_expire(*, rda_id, now):
    """Expire an RDA not dispensed within its validity, and free its prescription authorization."""
    with transaction.atomic():
        prescription_id = (
            DispenseAuthorization.objects.filter(pk=rda_id).values_list("prescription_id", flat=True).first()
        )
        if prescription_id is None:
            return 0
        _lock_prescription(prescription_id)
        rows = list(
            DispenseAuthorization.objects.filter(pk=rda_id, status=DispenseStatus.APPROVED, expires_at__lte=now)
            .select_related("prescription__program")
        )
        if not rows:
            return 0
        rda = rows[0]
        changed = DispenseAuthorization.objects.filter(pk=rda_id, status=DispenseStatus.APPROVED).update(
            status=DispenseStatus.EXPIRED, status_changed_at=now, status_reason="not dispensed in time"
        )
        if not changed:
            return 0
        Prescription.objects.filter(pk=rda.prescription_id, status=PrescriptionStatus.AUTHORIZED).update(
            status=PrescriptionStatus.ISSUED, status_changed_at=now
        )
        log_entry_write(
            actor=None, action="dispense_authorization.expire", outcome=DispenseStatus.EXPIRED,
            object_type="dispense_authorization", object_id=rda.pk, program=rda.prescription.program.slug,
            patient_id=rda.prescription.patient_id, prescriber_id=rda.prescription.prescriber_id,
            pharmacy_id=rda.pharmacy_id, prescription_id=rda.prescription_id, now=now,
            detail={"rda_number": rda.rda_number},
        )
        return changed


def _release_lapsed_rda(prescription_id, now):
    lapsed = DispenseAuthorization.objects.filter(
        prescription_id=prescription_id, status=DispenseStatus.APPROVED, expires_at__lte=now
    ).values_list("pk", flat=True)
    return sum(rda_expire(rda_id=rda_id, now=now) for rda_id in list(lapsed))


def _authorization_fact(prescription):
    return gates.AuthorizationFact(
        status=prescription.status, expires_at=prescription.expires_at, ndc=prescription.product.ndc,
        quantity=prescription.quantity, days_supply=prescription.days_supply,
        risk_category=prescription.risk_category,
    )


@transaction.atomic
def dispense_authorization_request(*, actor, pharmacy, authorization_number, date_of_birth, ndc, quantity, days_supply, now):
    """Check every gate again for the pharmacy at the counter and, when all pass, approve an RDA.
    Returns (decision, log entry, RDA or None)."""
    prescription = (
        Prescription.objects.select_related("patient", "product", "program")
        .filter(authorization_number=authorization_number)
        .first()
    )
    request = gates.DispenseRequestFact(date_of_birth=date_of_birth, ndc=ndc, quantity=quantity, days_supply=days_supply)
    # Requests of one pharmacy for one number take turns, so that each sees the failures counted before it: no
    # burst of guesses can slip past the birth-date limit.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       [f"dispense:{pharmacy.pk}:{authorization_number}"])
    lock = _locked_match(pharmacy, authorization_number)
    # Even a request refused unseen stays in the prescription's history; nothing of it goes into the answer.
    logged_prescription_id = prescription.pk if prescription else None
    if lock is not None:
        facts = gates.DispenseFacts(
            rule_set=None, pharmacy_certification=None, authorization=None, prescriber_certification=None,
            patient=None, recent_tests=(), request=request, match_lock=_lock_message(lock),
        )
        program = patient = prescription = None
    elif prescription is None:
        facts = gates.DispenseFacts(
            rule_set=None, pharmacy_certification=None, authorization=None, prescriber_certification=None,
            patient=None, recent_tests=(), request=request,
        )
        program = patient = None
    else:
        if prescription.status == PrescriptionStatus.AUTHORIZED:
            _release_lapsed_rda(prescription.pk, now)
            prescription.refresh_from_db(fields=["status"])
        program, patient = prescription.program, prescription.patient
        rule_set = rule_set_in_force(program=program, now=now)
        reproductive = (
            rule_set.parameters is not None
            and patient.risk_category in rule_set.parameters.reproductive_potential_categories
        )
        prescriber_certification, pharmacy_certification = certification_facts(
            program_id=program.pk, prescriber_id=prescription.prescriber_id, pharmacy_id=pharmacy.pk
        )
        facts = gates.DispenseFacts(
            rule_set=rule_set,
            pharmacy_certification=pharmacy_certification,
            authorization=_authorization_fact(prescription),
            prescriber_certification=prescriber_certification,
            patient=_patient_fact(patient),
            recent_tests=_recent_tests(patient.pk, rule_set, now) if reproductive else (),
            request=request,
        )
    decision = gates.dispense_decide(facts=facts, now=now)
    entry_id = uuid.uuid4()
    rda = None
    failed = set(decision.failed_codes)
    if "AUTHORIZATION_FOUND" in failed:
        _record_failed_match(actor, pharmacy, MatchLockKind.AUTHORIZATION_NUMBER, "", now)
    if "PATIENT_DOB_MATCH" in failed:
        _record_failed_match(actor, pharmacy, MatchLockKind.BIRTH_DATE, authorization_number, now)
    if decision.approved:
        # Only the request that moves the authorization from issued to authorized gets the RDA.
        taken = Prescription.objects.filter(
            pk=prescription.pk, status=PrescriptionStatus.ISSUED, expires_at__gt=now
        ).update(status=PrescriptionStatus.AUTHORIZED, status_changed_at=now)
        if taken:
            rda = DispenseAuthorization.objects.create(
                rda_number=_new_number(DispenseAuthorization, "rda_number", DISPENSE_PREFIX),
                prescription=prescription, pharmacy=pharmacy, requested_by=actor, product=prescription.product,
                quantity=quantity, days_supply=days_supply, rule_set=decision.rule_set,
                status=DispenseStatus.APPROVED, approved_at=now, expires_at=decision.expires_at,
                status_changed_at=now, decision_id=entry_id,
            )
        else:
            decision = _lost_race(decision)
    entry = log_entry_write(
        entry_id=entry_id, actor=actor, action="dispense_authorization.request", outcome=decision.status,
        object_type="dispense_authorization", object_id=rda.pk if rda else "", program=program.slug if program else "",
        patient_id=patient.pk if patient else None,
        prescriber_id=prescription.prescriber_id if prescription else None, pharmacy_id=pharmacy.pk,
        prescription_id=logged_prescription_id, rule_set=decision.rule_set,
        checks=_checks_json(decision), facts=gates.facts_for_log(facts), now=now,
        detail={
            "authorization_number": authorization_number, "ndc": ndc, "quantity": quantity,
            "days_supply": days_supply, "rda_number": rda.rda_number if rda else None,
            "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
        },
    )
    return decision, entry, rda


# --- Failed matches ---------------------------------------------------------------------------------------
UNKNOWN_NUMBER_WINDOW = timedelta(hours=24)


def _locked_match(pharmacy, authorization_number):
    return (
        MatchLock.objects.filter(pharmacy=pharmacy, cleared_at__isnull=True, locked_at__isnull=False)
        .filter(Q(kind=MatchLockKind.AUTHORIZATION_NUMBER)
                | Q(kind=MatchLockKind.BIRTH_DATE, authorization_number=authorization_number))
        .first()
    )


def _lock_message(lock):
    what = ("wrong dates of birth for this authorization number" if lock.kind == MatchLockKind.BIRTH_DATE
            else "unknown authorization numbers")
    return (f"Too many {what} from this pharmacy ({lock.failures}); further requests are refused until the program "
            "administrator clears them.")


def _record_failed_match(actor, pharmacy, kind, authorization_number, now):
    """Count a failed match; past the limit, lock the pharmacy's further attempts and tell the administrators."""
    limit = (settings.REMS_BIRTH_DATE_FAILURES if kind == MatchLockKind.BIRTH_DATE
             else settings.REMS_UNKNOWN_NUMBER_FAILURES)
    key = {"pharmacy": pharmacy, "kind": kind, "authorization_number": authorization_number}
    try:
        with transaction.atomic():
            lock = MatchLock.objects.create(**key, failures=0, first_failure_at=now, last_failure_at=now)
    except IntegrityError:
        lock = MatchLock.objects.select_for_update().get(**key, cleared_at__isnull=True)
    if kind == MatchLockKind.AUTHORIZATION_NUMBER and lock.locked_at is None and (
            lock.first_failure_at < now - UNKNOWN_NUMBER_WINDOW):
        lock.failures, lock.first_failure_at = 0, now
    lock.failures += 1
    lock.last_failure_at = now
    if lock.locked_at is None and lock.failures >= limit:
        lock.locked_at = now
        log_entry_write(
            actor=actor, action="security.match_lock", outcome="locked", object_type="match_lock", object_id=lock.pk,
            pharmacy_id=pharmacy.pk, now=now,
            detail={"kind": kind, "authorization_number": authorization_number or None, "failures": lock.failures},
        )
        notification_create(
            recipients=list(User.objects.filter(role=Role.ADMIN, is_active=True)), kind=NotificationKind.MATCH_LOCK,
            subject_type="match_lock", subject_id=lock.pk, due_on=now.date(), send_at=now, now=now, priority="high",
            title="A pharmacy's dispense requests are locked after failed matches",
            body=f"Pharmacy {pharmacy.ncpdp_id}: {_lock_message(lock)} Review it and clear the lock at "
                 f"/api/v1/match-locks/{lock.pk}/clear.",
        )
    lock.save()


class CannotClearLock(ActionRefused):
    pass


@transaction.atomic
def match_lock_clear(*, actor, lock, reason, now):
    changed = MatchLock.objects.filter(pk=lock.pk, cleared_at__isnull=True).update(cleared_at=now, cleared_by=actor)
    if not changed:
        raise CannotClearLock("This lock is already cleared.")
    log_entry_write(
        actor=actor, action="security.match_lock_clear", outcome="cleared", object_type="match_lock",
        object_id=lock.pk, pharmacy_id=lock.pharmacy_id, now=now,
        detail={"kind": lock.kind, "authorization_number": lock.authorization_number or None, "reason": reason},
    )
    lock.refresh_from_db()
    return lock


def _lost_race(decision):
    checks = tuple(
        gates.Check(
            "AUTHORIZATION_UNUSED", False,
            "Another request took this prescription authorization a moment ago (a dispense authorization or a "
            "cancellation); one dispense per authorization.",
        ) if c.code == "AUTHORIZATION_UNUSED" else c
        for c in decision.checks
    )
    return replace(decision, status=gates.DENIED, checks=checks, expires_at=None)


class CannotDispense(ActionRefused):
    pass


@transaction.atomic
def dispense_confirm(*, actor, rda, counseling_confirmed, medication_guide_provided, now):
    """Record the dispense: the pharmacist confirms counseling and the Medication Guide. At most one dispense per
    RDA and per prescription authorization, whatever races."""
    missing = []
    if counseling_confirmed is not True:
        missing.append("counseling was given")
    if medication_guide_provided is not True:
        missing.append("the Medication Guide was provided")
    if missing:
        raise CannotDispense(f"Before dispensing, confirm that {' and that '.join(missing)}.", status=422,
                             code="confirmation_required")
    prescription = rda.prescription
    # Rows are locked in one order everywhere (patient, prescription, RDA), so concurrent requests wait and
    # never deadlock. A positive test recorded at the same moment either waits for this dispense or blocks it.
    patient_status = _lock_patient(prescription.patient_id)
    _lock_prescription(prescription.pk)
    if patient_status != Status.ACTIVE:
        raise CannotDispense(
            f"The patient's enrollment is {patient_status}; nothing may be dispensed.", status=422,
            code="patient_not_enrolled",
        )
    changed = DispenseAuthorization.objects.filter(
        pk=rda.pk, status=DispenseStatus.APPROVED, expires_at__gt=now
    ).update(
        status=DispenseStatus.DISPENSED, dispensed_at=now, dispensed_by=actor, counseling_confirmed=True,
        medication_guide_provided=True, status_changed_at=now,
    )
    if not changed:
        rda.refresh_from_db()
        if rda.status == DispenseStatus.APPROVED:
            raise CannotDispense("This dispense authorization expired; request a new one.", status=422, code="expired")
        raise CannotDispense(f"This dispense authorization is {rda.status}; it cannot be dispensed.", code=rda.status)
    moved = Prescription.objects.filter(pk=prescription.pk, status=PrescriptionStatus.AUTHORIZED).update(
        status=PrescriptionStatus.DISPENSED, dispensed_at=now, status_changed_at=now
    )
    if not moved:  # the authorization was expired or taken meanwhile: undo by refusing, the transaction rolls back
        raise CannotDispense("The prescription authorization is no longer held by this RDA.", code="conflict")
    # Therapy starts with the first dispense: the FRP testing interval counts from it.
    Patient.objects.filter(pk=prescription.patient_id, therapy_started_at__isnull=True).update(therapy_started_at=now)
    log_entry_write(
        actor=actor, action="dispense.confirm", outcome=DispenseStatus.DISPENSED, object_type="dispense_authorization",
        object_id=rda.pk, program=prescription.program.slug, patient_id=prescription.patient_id,
        prescriber_id=prescription.prescriber_id, pharmacy_id=rda.pharmacy_id, prescription_id=prescription.pk,
        now=now, detail={"rda_number": rda.rda_number, "quantity": rda.quantity, "ndc": rda.product.ndc,
                         "counseling_confirmed": True, "medication_guide_provided": True},
    )
    rda.refresh_from_db()
    return rda


class CannotReverse(ActionRefused):
    pass


@transaction.atomic
def dispense_reverse(*, actor, rda, reason, now):
    """Reverse an RDA.

    Before the dispense (the patient did not pick up): the prescription authorization is freed again if it is
    still valid, otherwise it expires. After the dispense (a returned or reversed claim): the authorization is
    cancelled, never reopened, so that one authorization can never be dispensed twice; a new supply needs a new
    prescription authorization."""
    prescription = rda.prescription
    _lock_patient(prescription.patient_id)
    _lock_prescription(prescription.pk)
    was = DispenseAuthorization.objects.filter(pk=rda.pk).values_list("status", flat=True).get()
    changed = DispenseAuthorization.objects.filter(
        pk=rda.pk, status__in=[DispenseStatus.APPROVED, DispenseStatus.DISPENSED]
    ).update(status=DispenseStatus.REVERSED, status_changed_at=now, status_reason=reason)
    if not changed:
        raise CannotReverse(f"A {was} dispense authorization cannot be reversed.")
    if was == DispenseStatus.DISPENSED:
        outcome, why = PrescriptionStatus.CANCELLED, "dispense reversed: a new authorization is needed"
    elif prescription.expires_at > now:
        outcome, why = PrescriptionStatus.ISSUED, ""
    else:
        outcome, why = PrescriptionStatus.EXPIRED, "dispense authorization reversed after the validity ended"
    Prescription.objects.filter(
        pk=prescription.pk, status__in=[PrescriptionStatus.AUTHORIZED, PrescriptionStatus.DISPENSED]
    ).update(status=outcome, dispensed_at=None, status_changed_at=now, status_reason=why)
    if was == DispenseStatus.DISPENSED:
        # Therapy started with the first dispense that stands.
        first = (
            Prescription.objects.filter(patient_id=prescription.patient_id, status=PrescriptionStatus.DISPENSED)
            .order_by("dispensed_at").values_list("dispensed_at", flat=True).first()
        )
        Patient.objects.filter(pk=prescription.patient_id).update(therapy_started_at=first)
    log_entry_write(
        actor=actor, action="dispense_authorization.reverse", outcome=DispenseStatus.REVERSED,
        object_type="dispense_authorization", object_id=rda.pk, program=prescription.program.slug,
        patient_id=prescription.patient_id, prescriber_id=prescription.prescriber_id, pharmacy_id=rda.pharmacy_id,
        prescription_id=prescription.pk, now=now,
        detail={"rda_number": rda.rda_number, "reason": reason, "was": was, "prescription_status": outcome},
    )
    rda.refresh_from_db()
    return rda


# --- Sweeps ---------------------------------------------------------------------------------------------
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
    """Expire RDAs, prescription authorizations and certifications past their validity, in bounded batches.
    Rows are locked with SKIP LOCKED so that two sweeps never work on the same row; a rerun finds nothing. With
    `workers` above 1 the RDAs and authorizations are expired on that many connections at once (each its own
    transactions; inside a caller's transaction, on the caller's connection only)."""
    counts = {"dispense_authorizations": 0, "prescriptions": 0, "certifications": 0, "idempotency_records": 0}
    for name, statements in SWEEPS.items():
        counts[name] = _sweep_on(workers, statements, now, batch_size)
    while True:
        with transaction.atomic():
            rows = list(
                Certification.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("program")
                .filter(status__in=[Status.PENDING, Status.ACTIVE, Status.SUSPENDED], expires_at__lte=now)[:batch_size]
            )
            for certification in rows:
                counts["certifications"] += certification_expire(certification=certification, now=now)
        if len(rows) < batch_size:
            break
    RequestCounter.objects.filter(window_start__lt=now - timedelta(hours=1)).delete()
    # Stored answers for Idempotency-Key repeats are kept for a day: enough for any retry, and no longer
    # than needed, since they hold what was answered (names and dates of birth included).
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=now - IDEMPOTENCY_RETENTION)
            .values_list("pk", flat=True)[:batch_size]
        )
        counts["idempotency_records"] += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
    return counts

