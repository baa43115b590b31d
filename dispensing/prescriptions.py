"""Prescription authorizations: the prescriber's decision, cancellation, and expiry at the end of validity.

The decision locks the patient's row, expires an open authorization that has lapsed (so that no decision
depends on the sweep having run), loads its facts, asks the gate engine, and writes the authorization and the
compliance-log entry, in one transaction.
"""

import uuid

from django.db import connection, transaction

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core import gates
from rems.core.errors import ActionRefused
from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new
from rems.prepared import fetch_one, insert_params, placeholder, prepared_cursor
from rems.program.certifications import party_bar_check
from rems.program.models import Patient
from rems.program.selectors import RULE_SETS_LOCK

from . import facts
from .models import (
    OPEN_PRESCRIPTION_STATUSES,
    DispenseAuthorization,
    DispenseStatus,
    Prescription,
    PrescriptionStatus,
    SystemReason,
)


# The decision's locks, in one statement and in this order: the patient's row (one decision per patient at a time:
# the open-prescription check and the insert cannot interleave; only the patient's row, see `rows.patient_locked`),
# then the shared lock on the program's rule sets, held until commit (`selectors.rule_set_for_decision`). The
# outer query takes the second lock on the row the subquery locked, so after it. Returns the patient, as locked.
_PATIENT_COLUMNS = [field for field in Patient._meta.concrete_fields]
_DECISION_LOCKS_SQL = f"""SELECT {", ".join(f"locked.{field.column}" for field in _PATIENT_COLUMNS)},
       pg_advisory_xact_lock_shared({RULE_SETS_LOCK}, locked.program_id::integer)
  FROM (SELECT * FROM {Patient._meta.db_table} WHERE id = %(patient)s::uuid FOR NO KEY UPDATE) locked
"""

_PRESCRIPTION_COLUMNS = [field for field in Prescription._meta.concrete_fields]
_PRESCRIPTION_INSERT = (
    f"INSERT INTO {Prescription._meta.db_table} ({', '.join(f.column for f in _PRESCRIPTION_COLUMNS)}) "
    f"VALUES ({', '.join(placeholder(f) for f in _PRESCRIPTION_COLUMNS)}) "
    "ON CONFLICT (authorization_number) DO NOTHING RETURNING 1"
)


def _patient_locked(patient_id):
    row = fetch_one(_DECISION_LOCKS_SQL, {"patient": patient_id})
    if row is None:
        raise Patient.DoesNotExist("No patient with this id.")
    return Patient.from_db(connection.alias, [f.attname for f in _PATIENT_COLUMNS], row[:len(_PATIENT_COLUMNS)])


def _prescription_insert(prescription):
    """Insert `prescription`; its number is drawn again in the astronomically rare case that it is taken."""
    with prepared_cursor() as cursor:
        while True:
            cursor.execute(_PRESCRIPTION_INSERT, insert_params(prescription, _PRESCRIPTION_COLUMNS))
            if cursor.fetchone() is not None:
                break
            prescription.authorization_number = authorization_number_new(PRESCRIPTION_PREFIX)
    prescription._state.adding, prescription._state.db = False, connection.alias


@transaction.atomic
def prescription_authorize(*, actor, patient, ndc, quantity, days_supply, now):
    """Run the prescriber survey for `patient` and, when every check passes, issue an authorization number.
    Returns (decision, log entry, prescription or None)."""
    patient = _patient_locked(patient.pk)
    decision_facts, product_id, program_slug = facts.prescription_facts(patient=patient, ndc=ndc, quantity=quantity,
                                                          days_supply=days_supply, now=now)
    lapsed = decision_facts.history.open_prescription
    if lapsed is not None and lapsed.expires_at <= now:
        # The open authorization has lapsed: expire it now rather than wait for the sweep. (The engine already
        # treats it as closed: an authorization past its validity is not open.)
        _lapsed_open_prescriptions_expire(patient=patient, now=now)
    decision = gates.prescription_decide(facts=decision_facts, now=now)
    entry_id = uuid.uuid4()
    prescription = None
    if decision.approved:
        prescription = Prescription(
            authorization_number=authorization_number_new(PRESCRIPTION_PREFIX),
            patient=patient, prescriber_id=patient.prescriber_id, program_id=patient.program_id,
            product_id=product_id, quantity=quantity, days_supply=days_supply, risk_category=patient.risk_category,
            rule_set=decision.rule_set, status=PrescriptionStatus.ISSUED, issued_at=now,
            expires_at=decision.expires_at, status_changed_at=now, decision_id=entry_id,
        )
        _prescription_insert(prescription)
    entry = log_entry_write(
        entry_id=entry_id, actor=actor, action=Action.PRESCRIPTION_AUTHORIZE, outcome=decision.status,
        object_type="prescription", object_id=prescription.pk if prescription else "",
        program=program_slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id,
        prescription_id=prescription.pk if prescription else None, rule_set=decision.rule_set,
        checks=gates.checks_as_json(decision), facts=gates.facts_for_log(decision_facts), now=now,
        detail={
            "ndc": ndc, "quantity": quantity, "days_supply": days_supply,
            "authorization_number": prescription.authorization_number if prescription else None,
            "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
        },
    )
    return decision, entry, prescription


def _lapsed_open_prescriptions_expire(*, patient, now):
    lapsed = list(
        Prescription.objects.filter(
            patient=patient, status__in=OPEN_PRESCRIPTION_STATUSES, expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    for prescription_id in lapsed:
        prescription_expire(prescription_id=prescription_id, now=now)


class CannotCancel(ActionRefused):
    pass


@transaction.atomic
def prescription_cancel(*, actor, prescription, reason, now):
    """The prescriber cancels an authorization no pharmacy holds (`issued`), with a reason."""
    party_bar_check(actor=actor, program=prescription.program)
    changed = Prescription.objects.filter(pk=prescription.pk, status=PrescriptionStatus.ISSUED).update(
        status=PrescriptionStatus.CANCELLED, status_changed_at=now, status_reason=reason
    )
    prescription.refresh_from_db()
    if not changed:
        extra = " A pharmacy holds a dispense authorization for it; it must be reversed first." if (
            prescription.status == PrescriptionStatus.AUTHORIZED) else ""
        raise CannotCancel(f"A {prescription.status} prescription authorization cannot be cancelled.{extra}")
    log_entry_write(
        actor=actor, action=Action.PRESCRIPTION_CANCEL, outcome=PrescriptionStatus.CANCELLED,
        object_type="prescription", object_id=prescription.pk, program=prescription.program.slug,
        patient_id=prescription.patient_id, prescriber_id=prescription.prescriber_id,
        prescription_id=prescription.pk, now=now, detail={"reason": reason},
    )
    return prescription


def prescription_expire(*, prescription_id, now):
    """Expire an authorization past its validity, with the RDA that holds it; does nothing if it is no longer
    open or still valid. The expiry sweep does the same for many at once (`dispensing.sweeps`)."""
    changed = Prescription.objects.filter(
        pk=prescription_id, status__in=OPEN_PRESCRIPTION_STATUSES, expires_at__lte=now
    ).update(status=PrescriptionStatus.EXPIRED, status_changed_at=now, status_reason=SystemReason.VALIDITY_ENDED)
    if changed:
        DispenseAuthorization.objects.filter(prescription_id=prescription_id, status=DispenseStatus.APPROVED).update(
            status=DispenseStatus.EXPIRED, status_changed_at=now, status_reason=SystemReason.PRESCRIPTION_EXPIRED
        )
        row = Prescription.objects.filter(pk=prescription_id).values(
            "program__slug", "patient_id", "prescriber_id").get()
        log_entry_write(
            actor=None, action=Action.PRESCRIPTION_EXPIRE, outcome=PrescriptionStatus.EXPIRED,
            object_type="prescription", object_id=prescription_id, program=row["program__slug"],
            patient_id=row["patient_id"], prescriber_id=row["prescriber_id"], prescription_id=prescription_id,
            now=now,
        )
    return changed
