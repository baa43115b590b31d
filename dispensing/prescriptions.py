"""Prescription authorizations: the prescriber's decision, cancellation, and expiry at the end of validity.

The decision locks the patient's row, expires an open authorization that has lapsed (so that no decision
depends on the sweep having run), loads its facts, asks the gate engine, and writes the authorization and the
compliance-log entry, in one transaction.
"""

import uuid

from django.db import transaction

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core import gates
from rems.core.errors import ActionRefused
from rems.core.identifiers import PRESCRIPTION_PREFIX
from rems.program.certifications import party_bar_check
from rems.program.models import Product
from rems.program.selectors import rule_set_for_decision

from . import facts
from .models import (
    OPEN_PRESCRIPTION_STATUSES,
    DispenseAuthorization,
    DispenseStatus,
    Prescription,
    PrescriptionStatus,
    SystemReason,
)
from .numbers import number_unused
from .rows import patient_locked


@transaction.atomic
def prescription_authorize(*, actor, patient, ndc, quantity, days_supply, now):
    """Run the prescriber survey for `patient` and, when every check passes, issue an authorization number.
    Returns (decision, log entry, prescription or None)."""
    # One decision per patient at a time: the open-prescription check and the insert cannot interleave.
    patient = patient_locked(patient.pk)
    program = patient.program
    rule_set = rule_set_for_decision(program=program, now=now)
    product = Product.objects.filter(ndc=ndc, program=program).first()
    decision_facts = facts.prescription_facts(
        patient=patient, product=product, rule_set=rule_set, ndc=ndc, quantity=quantity, days_supply=days_supply,
        now=now,
    )
    lapsed = decision_facts.history.open_prescription
    if lapsed is not None and lapsed.expires_at <= now:
        # The open authorization has lapsed: expire it now rather than wait for the sweep. (The engine already
        # treats it as closed: an authorization past its validity is not open.)
        _lapsed_open_prescriptions_expire(patient=patient, now=now)
    decision = gates.prescription_decide(facts=decision_facts, now=now)
    entry_id = uuid.uuid4()
    prescription = None
    if decision.approved:
        prescription = Prescription.objects.create(
            authorization_number=number_unused(Prescription, "authorization_number", PRESCRIPTION_PREFIX),
            patient=patient, prescriber_id=patient.prescriber_id, program=program, product=product,
            quantity=quantity, days_supply=days_supply, risk_category=patient.risk_category,
            rule_set=decision.rule_set, status=PrescriptionStatus.ISSUED, issued_at=now,
            expires_at=decision.expires_at, status_changed_at=now, decision_id=entry_id,
        )
    entry = log_entry_write(
        entry_id=entry_id, actor=actor, action=Action.PRESCRIPTION_AUTHORIZE, outcome=decision.status,
        object_type="prescription", object_id=prescription.pk if prescription else "",
        program=program.slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id,
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
