"""Pharmacy dispense authorizations (RDAs): the decision at the counter, the dispense, its reversal, and the
expiry of an RDA not dispensed in time.

Races are settled by the database: a conditional UPDATE that changes a row only from the state the decision
saw, and partial unique indexes behind it (one live RDA, and one dispense, per prescription authorization).
"""

import uuid

from django.db import connection, transaction

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core import gates
from rems.core.errors import ActionRefused
from rems.core.identifiers import DISPENSE_PREFIX, authorization_number_new
from rems.prepared import fetch_one, insert_params, placeholder, prepared_cursor
from rems.program.certifications import party_bar_check
from rems.program.models import Patient, Status
from rems.program.selectors import RULE_SETS_LOCK

from . import facts
from .match_locks import (
    LOCK_IN_FORCE_SQL,
    failed_match_record,
    match_lock_after_turn,
    match_lock_message,
    match_lock_of,
)
from .models import (
    DispenseAuthorization,
    DispenseStatus,
    MatchLockKind,
    Prescription,
    PrescriptionStatus,
    SystemReason,
)
from .rows import patient_lock, prescription_lock


# The decision's first statement: the shared lock on the rule sets of the number's program, held until commit
# (`selectors.rule_set_for_decision`), and the failed-match lock already in force for the pharmacy and number, if
# any. Returns the authorization's id (None when no authorization has the number) and that lock. Everything the
# decision reads is read by later statements, which see whatever committed before the lock was granted. Requests
# of one pharmacy are decided side by side; the failed-match limits hold by the pharmacy's turn at its counters,
# taken once the answer is known and before anything is written (`match_locks`).
_DECISION_LOCKS_SQL = f"""SELECT (SELECT locked.id FROM (
          SELECT p.id, pg_advisory_xact_lock_shared({RULE_SETS_LOCK}, p.program_id::integer) AS shared
            FROM dispensing_prescription p
           WHERE p.authorization_number = %(number)s::text OFFSET 0) locked),
       {LOCK_IN_FORCE_SQL}
"""

_RDA_COLUMNS = [field for field in DispenseAuthorization._meta.concrete_fields]
_RDA_VALUES = ", ".join(placeholder(field) for field in _RDA_COLUMNS)
_RDA_INSERT = (f"INSERT INTO {DispenseAuthorization._meta.db_table} ({', '.join(f.column for f in _RDA_COLUMNS)}) "
               f"SELECT {_RDA_VALUES} FROM {{source}} ON CONFLICT (rda_number) DO NOTHING RETURNING 1")

# Only the request that moves the authorization from issued to authorized gets the RDA: the conditional update and
# the RDA's insert in one statement. Returns (authorizations taken, RDAs inserted): (1, 0) only when the RDA's new
# number was taken meanwhile (astronomically rare; it is inserted again with another).
_TAKE_SQL = f"""WITH taken AS (
  UPDATE dispensing_prescription SET status = '{PrescriptionStatus.AUTHORIZED}', status_changed_at = %(approved_at)s
   WHERE id = %(prescription_id)s::uuid AND status = '{PrescriptionStatus.ISSUED}' AND expires_at > %(approved_at)s
  RETURNING id
), inserted AS (
  {_RDA_INSERT.format(source="taken")}
)
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM inserted)
"""
_RDA_INSERT_AGAIN = _RDA_INSERT.format(source="(SELECT 1) one")


def _rda_take(rda):
    """Take the authorization and insert `rda`, in one statement; False when another request took it first."""
    with prepared_cursor() as cursor:
        cursor.execute(_TAKE_SQL, insert_params(rda, _RDA_COLUMNS))
        taken, inserted = cursor.fetchone()
        while taken and not inserted:
            rda.rda_number = authorization_number_new(DISPENSE_PREFIX)
            cursor.execute(_RDA_INSERT_AGAIN, insert_params(rda, _RDA_COLUMNS))
            inserted = cursor.fetchone() is not None
    rda._state.adding, rda._state.db = False, connection.alias
    return bool(taken)


@transaction.atomic
def dispense_authorization_request(*, actor, pharmacy, authorization_number, date_of_birth, ndc, quantity, days_supply, now):
    """Check every gate again for the pharmacy at the counter and, when all pass, approve an RDA.
    Returns (decision, log entry, RDA or None)."""
    request = gates.DispenseRequestFact(date_of_birth=date_of_birth, ndc=ndc, quantity=quantity, days_supply=days_supply)
    logged_prescription_id, in_force = fetch_one(_DECISION_LOCKS_SQL, {
        "number": authorization_number, "pharmacy": pharmacy.pk})
    lock, found = match_lock_of(pharmacy, authorization_number, in_force), None
    if lock is None:
        decision_facts, found = facts.dispense_facts(authorization_number=authorization_number, pharmacy=pharmacy,
                                                     request=request, now=now)
        decision = gates.dispense_decide(facts=decision_facts, now=now)
        # The pharmacy's turn at its counters, before anything is written: a failed match is counted, any other
        # answer waits for the failures being counted; either finds the lock that came first, if any.
        if decision.failed_match:
            lock = failed_match_record(actor=actor, pharmacy=pharmacy, kind=MatchLockKind(decision.failed_match),
                                       authorization_number=authorization_number, now=now)
        else:
            lock = match_lock_after_turn(pharmacy, authorization_number)
        if lock is None and found is not None and found.status == PrescriptionStatus.AUTHORIZED and found.lapsed_rda:
            # An RDA that lapsed undispensed releases the authorization first, so that no decision depends on the
            # sweep having run.
            _lapsed_rda_release(found.id, now)
            decision_facts, found = facts.dispense_facts(authorization_number=authorization_number,
                                                         pharmacy=pharmacy, request=request, now=now)
            decision = gates.dispense_decide(facts=decision_facts, now=now)
    if lock is not None:
        # Refused unseen: even so it stays in the prescription's history; nothing of it goes into the answer.
        found = None
        decision_facts = facts.locked_out_facts(request=request, lock_message=match_lock_message(lock))
        decision = gates.dispense_decide(facts=decision_facts, now=now)
    entry_id = uuid.uuid4()
    rda = None
    if decision.approved:
        rda = DispenseAuthorization(
            rda_number=authorization_number_new(DISPENSE_PREFIX), prescription_id=found.id, pharmacy=pharmacy,
            requested_by=actor, product_id=found.product_id, quantity=quantity, days_supply=days_supply,
            rule_set=decision.rule_set, status=DispenseStatus.APPROVED, approved_at=now, expires_at=decision.expires_at,
            status_changed_at=now, decision_id=entry_id,
        )
        if not _rda_take(rda):
            rda = None
            decision = gates.dispense_lost_race(decision)
    entry = log_entry_write(
        entry_id=entry_id, actor=actor, action=Action.DISPENSE_AUTHORIZATION_REQUEST, outcome=decision.status,
        object_type="dispense_authorization", object_id=rda.pk if rda else "",
        program=found.program_slug if found else "", patient_id=found.patient_id if found else None,
        prescriber_id=found.prescriber_id if found else None, pharmacy_id=pharmacy.pk,
        prescription_id=logged_prescription_id, rule_set=decision.rule_set,
        checks=gates.checks_as_json(decision), facts=gates.facts_for_log(decision_facts), now=now,
        detail={
            "authorization_number": authorization_number, "ndc": ndc, "quantity": quantity,
            "days_supply": days_supply, "rda_number": rda.rda_number if rda else None,
            "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
        },
    )
    return decision, entry, rda


def rda_expire(*, rda_id, now):
    """Expire an RDA not dispensed within its validity, and free its prescription authorization; does nothing
    otherwise. Returns how many changed (0 or 1). The expiry sweep does the same for many at once."""
    with transaction.atomic():
        prescription_id = (
            DispenseAuthorization.objects.filter(pk=rda_id).values_list("prescription_id", flat=True).first()
        )
        if prescription_id is None:
            return 0
        prescription_lock(prescription_id)
        rows = list(
            DispenseAuthorization.objects.filter(pk=rda_id, status=DispenseStatus.APPROVED, expires_at__lte=now)
            .select_related("prescription__program")
        )
        if not rows:
            return 0
        rda = rows[0]
        changed = DispenseAuthorization.objects.filter(pk=rda_id, status=DispenseStatus.APPROVED).update(
            status=DispenseStatus.EXPIRED, status_changed_at=now, status_reason=SystemReason.NOT_DISPENSED_IN_TIME
        )
        if not changed:
            return 0
        Prescription.objects.filter(pk=rda.prescription_id, status=PrescriptionStatus.AUTHORIZED).update(
            status=PrescriptionStatus.ISSUED, status_changed_at=now
        )
        log_entry_write(
            actor=None, action=Action.DISPENSE_AUTHORIZATION_EXPIRE, outcome=DispenseStatus.EXPIRED,
            object_type="dispense_authorization", object_id=rda.pk, program=rda.prescription.program.slug,
            patient_id=rda.prescription.patient_id, prescriber_id=rda.prescription.prescriber_id,
            pharmacy_id=rda.pharmacy_id, prescription_id=rda.prescription_id, now=now,
            detail={"rda_number": rda.rda_number},
        )
        return changed


def _lapsed_rda_release(prescription_id, now):
    lapsed = DispenseAuthorization.objects.filter(
        prescription_id=prescription_id, status=DispenseStatus.APPROVED, expires_at__lte=now
    ).values_list("pk", flat=True)
    return sum(rda_expire(rda_id=rda_id, now=now) for rda_id in list(lapsed))


class CannotDispense(ActionRefused):
    pass


class DispenseNotAllowed(CannotDispense):
    """The dispense cannot be confirmed as it stands: a confirmation is missing, the RDA lapsed, or the
    patient's enrollment is no longer active."""


@transaction.atomic
def dispense_confirm(*, actor, rda, counseling_confirmed, medication_guide_provided, now):
    """Record the dispense: the pharmacist confirms counseling and the Medication Guide. At most one dispense per
    RDA and per prescription authorization, whatever races."""
    party_bar_check(actor=actor, program=rda.prescription.program)
    missing = []
    if counseling_confirmed is not True:
        missing.append("counseling was given")
    if medication_guide_provided is not True:
        missing.append("the Medication Guide was provided")
    if missing:
        raise DispenseNotAllowed(f"Before dispensing, confirm that {' and that '.join(missing)}.",
                                 code="confirmation_required")
    prescription = rda.prescription
    # Rows are locked in one order everywhere (patient, prescription, RDA), so concurrent requests wait and
    # never deadlock. A positive test recorded at the same moment either waits for this dispense or blocks it.
    patient_status = patient_lock(prescription.patient_id)
    prescription_lock(prescription.pk)
    if patient_status != Status.ACTIVE:
        raise DispenseNotAllowed(
            f"The patient's enrollment is {patient_status}; nothing may be dispensed.", code="patient_not_enrolled",
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
            raise DispenseNotAllowed("This dispense authorization expired; request a new one.", code="expired")
        raise CannotDispense(f"This dispense authorization is {rda.status}; it cannot be dispensed.", code=rda.status)
    moved = Prescription.objects.filter(pk=prescription.pk, status=PrescriptionStatus.AUTHORIZED).update(
        status=PrescriptionStatus.DISPENSED, dispensed_at=now, status_changed_at=now
    )
    if not moved:  # the authorization was expired or taken meanwhile: undo by refusing, the transaction rolls back
        raise CannotDispense("The prescription authorization is no longer held by this RDA.", code="conflict")
    # Therapy starts with the first dispense: the FRP testing interval counts from it.
    Patient.objects.filter(pk=prescription.patient_id, therapy_started_at__isnull=True).update(therapy_started_at=now)
    log_entry_write(
        actor=actor, action=Action.DISPENSE_AUTHORIZATION_DISPENSE, outcome=DispenseStatus.DISPENSED,
        object_type="dispense_authorization", object_id=rda.pk, program=prescription.program.slug,
        patient_id=prescription.patient_id, prescriber_id=prescription.prescriber_id, pharmacy_id=rda.pharmacy_id,
        prescription_id=prescription.pk, now=now,
        detail={"rda_number": rda.rda_number, "quantity": rda.quantity, "ndc": rda.product.ndc,
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
    party_bar_check(actor=actor, program=rda.prescription.program)
    prescription = rda.prescription
    patient_lock(prescription.patient_id)
    prescription_lock(prescription.pk)
    was = DispenseAuthorization.objects.filter(pk=rda.pk).values_list("status", flat=True).get()
    changed = DispenseAuthorization.objects.filter(
        pk=rda.pk, status__in=[DispenseStatus.APPROVED, DispenseStatus.DISPENSED]
    ).update(status=DispenseStatus.REVERSED, status_changed_at=now, status_reason=reason)
    if not changed:
        raise CannotReverse(f"A {was} dispense authorization cannot be reversed.")
    if was == DispenseStatus.DISPENSED:
        outcome, why = PrescriptionStatus.CANCELLED, SystemReason.DISPENSE_REVERSED
    elif prescription.expires_at > now:
        outcome, why = PrescriptionStatus.ISSUED, ""
    else:
        outcome, why = PrescriptionStatus.EXPIRED, SystemReason.REVERSED_AFTER_VALIDITY
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
        actor=actor, action=Action.DISPENSE_AUTHORIZATION_REVERSE, outcome=DispenseStatus.REVERSED,
        object_type="dispense_authorization", object_id=rda.pk, program=prescription.program.slug,
        patient_id=prescription.patient_id, prescriber_id=prescription.prescriber_id, pharmacy_id=rda.pharmacy_id,
        prescription_id=prescription.pk, now=now,
        detail={"rda_number": rda.rda_number, "reason": reason, "was": was, "prescription_status": outcome},
    )
    rda.refresh_from_db()
    return rda
