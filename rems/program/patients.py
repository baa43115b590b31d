"""Patients' enrollment in a program: enrolling, a new risk category with a new agreement, suspension and
reinstatement. Each is one transaction with its compliance-log entry."""

from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Lower

from rems.compliance_log.actions import ENROLLMENT_CHANGES, Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused
from rems.core.gates import age_on, category_fits_age

from .certifications import party_bar_check
from .models import LIVE_STATUSES, EnrollmentTransfer, NotificationKind, Patient, Status, TransferState
from .notifications import administrators, notification_create
from .selectors import certification_is_active, rule_set_in_force
from .validation import CLOCK_SKEW, InvalidValue, plausible_date_check


class CannotEnroll(ActionRefused):
    pass


class AlreadyEnrolled(CannotEnroll):
    """One person has one live enrollment per program: this office enrolled the person already (`patient_id`)."""

    code = "already_enrolled"

    def __init__(self, message, *, patient_id=None):
        super().__init__(message)
        self.patient_id = patient_id


class CannotChangeEnrollment(ActionRefused):
    pass


class CannotDecideTransfer(ActionRefused):
    pass


def _time_zone_check(program, params, time_zone):
    """A patient's time zone, when given, is one of the program's (`calendar_day_time_zones`)."""
    if not time_zone:
        return
    zones = [zone.key for zone in params.calendar_day_time_zones]
    if time_zone not in zones:
        raise InvalidValue(f"{time_zone!r} is not one of the time zones of {program.slug}: "
                           f"{', '.join(zones) or 'none'}.", code="invalid_choice", field="time_zone")


def _category_check(program, risk_category, date_of_birth, now):
    """The category is one of the program's (under its rule set in force) and fits the patient's age today: a
    child category for a child, an adult one for an adult. (Every decision checks the age again: children grow
    up.) Returns the rule set's parameters."""
    params = rule_set_in_force(program=program, now=now).parameters
    if params is None:
        raise CannotEnroll(f"No valid rule set is in force for {program.slug}; nobody can be enrolled until one is.",
                           code="no_rule_set")
    category = params.category(risk_category)
    if category is None:
        raise InvalidValue(f"{risk_category} is not a risk category of {program.slug}; its categories are "
                           f"{', '.join(params.risk_categories)}.", code="invalid_choice", field="risk_category")
    age = age_on(date_of_birth, now.date())
    if not category_fits_age(category, age, params):
        expected = "an adult" if category.age == "adult" else "a child"
        raise InvalidValue(f"{risk_category} is for {expected}, but the patient is {age}.", field="risk_category")
    return params


def _agreement_date_check(agreement_signed_on, now, *, date_of_birth=None):
    if agreement_signed_on > (now + CLOCK_SKEW).date():
        raise InvalidValue("The agreement cannot be signed in the future.", field="agreement_signed_on")
    if date_of_birth and agreement_signed_on < date_of_birth:
        raise InvalidValue("The agreement cannot be signed before the patient's birth.", field="agreement_signed_on")


@transaction.atomic
def patient_enroll(
    *, actor, prescriber, program, first_name, last_name, date_of_birth, risk_category, agreement_signed_on,
    irregular_cycles, now, time_zone="",
):
    """A certified prescriber enrolls a patient in a program, with the risk category of the signed
    Patient-Prescriber Agreement. One live enrollment per person (name, date of birth) and program: a person
    already enrolled by the same office is refused (AlreadyEnrolled, naming that record); a person enrolled by
    another office becomes an EnrollmentTransfer for the program administrator, and the asking prescriber learns
    nothing of the other enrollment. Returns the Patient, or the EnrollmentTransfer."""
    party_bar_check(actor=actor, program=program)
    if date_of_birth > now.date():
        raise InvalidValue("The date of birth cannot be in the future.", field="date_of_birth")
    plausible_date_check(date_of_birth, "The date of birth", field="date_of_birth")
    _agreement_date_check(agreement_signed_on, now, date_of_birth=date_of_birth)
    params = _category_check(program, risk_category, date_of_birth, now)
    _time_zone_check(program, params, time_zone)
    # Patients are enrolled by a certified prescriber.
    if not certification_is_active(program_id=program.pk, prescriber_id=prescriber.pk, now=now):
        raise CannotEnroll(
            f"The prescriber is not actively certified in {program.slug}; only a certified prescriber enrolls patients.",
            code="prescriber_not_certified",
        )
    for _ in range(2):  # a second try only if the live enrollment ended between the insert and the lookup
        try:
            with transaction.atomic():
                patient = Patient.objects.create(
                    program=program, prescriber=prescriber, first_name=first_name.strip(),
                    last_name=last_name.strip(), date_of_birth=date_of_birth, risk_category=risk_category,
                    agreement_signed_on=agreement_signed_on, irregular_cycles=irregular_cycles, time_zone=time_zone,
                    status=Status.ACTIVE, enrolled_at=now, status_changed_at=now,
                )
            break
        except IntegrityError:
            live = _live_enrollment(program, first_name, last_name, date_of_birth)
            if live is None:
                continue
            if live.prescriber_id == prescriber.pk:
                raise AlreadyEnrolled(
                    f"This patient is already enrolled in {program.slug} by your office (patient {live.pk}); one "
                    "person has one enrollment.", patient_id=live.pk,
                ) from None
            return _transfer_request(actor=actor, patient=live, prescriber=prescriber, risk_category=risk_category,
                                     agreement_signed_on=agreement_signed_on, irregular_cycles=irregular_cycles,
                                     time_zone=time_zone, now=now)
    else:
        raise CannotEnroll("The enrollment could not be completed; try again.", code="enrollment_conflict")
    log_entry_write(
        actor=actor, action=Action.PATIENT_ENROLL, outcome=Status.ACTIVE, object_type="patient", object_id=patient.pk,
        program=program.slug, patient_id=patient.pk, prescriber_id=prescriber.pk, now=now,
        detail={"risk_category": risk_category, "agreement_signed_on": agreement_signed_on.isoformat(),
                "time_zone": time_zone},
    )
    return patient


@transaction.atomic
def patient_change_risk_category(*, actor, patient, risk_category, agreement_signed_on, irregular_cycles, reason,
                                 now):
    """A new risk category needs a new Patient-Prescriber Agreement, signed no earlier than the current one, and
    the prescriber's reason (for example the basis for "not of reproductive potential"), which is logged."""
    party_bar_check(actor=actor, program=patient.program)
    patient = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    _agreement_date_check(agreement_signed_on, now, date_of_birth=patient.date_of_birth)
    if agreement_signed_on < patient.agreement_signed_on:
        raise InvalidValue("The new agreement cannot be older than the one on file.", field="agreement_signed_on")
    _category_check(patient.program, risk_category, patient.date_of_birth, now)
    before = {"risk_category": patient.risk_category, "agreement_signed_on": patient.agreement_signed_on.isoformat()}
    patient.risk_category = risk_category
    patient.agreement_signed_on = agreement_signed_on
    if irregular_cycles is not None:
        patient.irregular_cycles = irregular_cycles
    patient.save(update_fields=["risk_category", "agreement_signed_on", "irregular_cycles"])
    log_entry_write(
        actor=actor, action=Action.PATIENT_CHANGE_RISK_CATEGORY, outcome="changed", object_type="patient",
        object_id=patient.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=patient.prescriber_id, now=now,
        detail={"reason": reason, "before": before, "after": {"risk_category": risk_category,
                                            "agreement_signed_on": agreement_signed_on.isoformat(),
                                            "irregular_cycles": patient.irregular_cycles}},
    )
    return patient


_PAST = {"suspend": "suspended", "reinstate": "reinstated"}
_TRANSITIONS = {
    "suspend": ([Status.ACTIVE], Status.SUSPENDED),
    "reinstate": ([Status.SUSPENDED], Status.ACTIVE),
}


@transaction.atomic
def patient_change_status(*, actor, patient, action, reason, now):
    from_statuses, to_status = _TRANSITIONS[action]
    changed = Patient.objects.filter(pk=patient.pk, status__in=from_statuses).update(
        status=to_status, status_reason=reason, status_changed_at=now
    )
    patient.refresh_from_db()
    if not changed:
        raise CannotChangeEnrollment(f"A {patient.status} enrollment cannot be {_PAST[action]}.")
    log_entry_write(
        actor=actor, action=ENROLLMENT_CHANGES[action], outcome=to_status, object_type="patient", object_id=patient.pk,
        program=patient.program.slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id, now=now,
        detail={"reason": reason},
    )
    return patient


# --- Transfers between prescribers ------------------------------------------------------------------------
def _live_enrollment(program, first_name, last_name, date_of_birth):
    """The live enrollment the unique index `patient_one_live_enrollment` matched: the same expressions (lower-cased
    names), so that the lookup finds whatever the index refused."""
    return (Patient.objects.annotate(first=Lower("first_name"), last=Lower("last_name"))
            .filter(program=program, first=Lower(Value(first_name.strip())), last=Lower(Value(last_name.strip())),
                    date_of_birth=date_of_birth, status__in=LIVE_STATUSES)
            .select_for_update(of=("self",)).first())


def _transfer_request(*, actor, patient, prescriber, risk_category, agreement_signed_on, irregular_cycles,
                      time_zone, now):
    # One pending request per patient and asking office: asking again changes nothing and tells no one again.
    pending = EnrollmentTransfer.objects.filter(patient=patient, prescriber=prescriber,
                                                state=TransferState.PENDING).first()
    if pending is not None:
        return pending
    transfer = EnrollmentTransfer.objects.create(
        patient=patient, prescriber=prescriber, requested_by=actor, risk_category=risk_category,
        agreement_signed_on=agreement_signed_on, irregular_cycles=irregular_cycles, time_zone=time_zone,
        requested_at=now,
    )
    log_entry_write(
        actor=actor, action=Action.PATIENT_TRANSFER_REQUEST, outcome=TransferState.PENDING,
        object_type="enrollment_transfer", object_id=transfer.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=prescriber.pk, now=now, detail={"from_prescriber": str(patient.prescriber_id)},
    )
    notification_create(
        recipients=administrators(), kind=NotificationKind.ENROLLMENT_TRANSFER, subject_type="enrollment_transfer",
        subject_id=transfer.pk, due_on=now.date(), send_at=now, now=now,
        title="A prescriber asks to enroll a patient enrolled by another office",
        body=f"Enrollment transfer {transfer.pk} in {patient.program.slug}: check with the patient and both offices, "
             "then approve or decline it on the admin site.",
    )
    return transfer


@transaction.atomic
def transfer_decide(*, actor, transfer, approve, reason, now):
    """A program administrator approves a transfer (the enrollment moves to the asking prescriber, with the new
    agreement and category) or declines it, with a reason. Both are logged."""
    transfer = EnrollmentTransfer.objects.select_for_update().get(pk=transfer.pk)
    if transfer.state != TransferState.PENDING:
        raise CannotDecideTransfer(f"This transfer is already {transfer.state}.")
    patient = Patient.objects.select_for_update(no_key=True).get(pk=transfer.patient_id)
    before = str(patient.prescriber_id)
    if approve:
        if patient.status not in LIVE_STATUSES:
            raise CannotDecideTransfer("The enrollment is no longer live; the prescriber can enroll the patient anew.")
        if not certification_is_active(program_id=patient.program_id, prescriber_id=transfer.prescriber_id, now=now):
            raise CannotDecideTransfer("The asking prescriber is no longer certified in the program.")
        _category_check(patient.program, transfer.risk_category, patient.date_of_birth, now)
        patient.prescriber_id = transfer.prescriber_id
        patient.risk_category = transfer.risk_category
        patient.agreement_signed_on = transfer.agreement_signed_on
        patient.irregular_cycles = transfer.irregular_cycles
        patient.save(update_fields=["prescriber", "risk_category", "agreement_signed_on", "irregular_cycles"])
    transfer.state = TransferState.APPROVED if approve else TransferState.DECLINED
    transfer.decided_at, transfer.decided_by, transfer.decision_reason = now, actor, reason
    transfer.save(update_fields=["state", "decided_at", "decided_by", "decision_reason"])
    log_entry_write(
        actor=actor, action=Action.PATIENT_TRANSFER_DECIDE, outcome=transfer.state, object_type="enrollment_transfer",
        object_id=transfer.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=transfer.prescriber_id, now=now,
        detail={"reason": reason, "from_prescriber": before, "to_prescriber": str(transfer.prescriber_id)},
    )
    return transfer
