"""The reminders: what a patient in therapy needs next (to the prescriber's office, at the moment the check
it reminds of starts failing: `rems.core.reminders`), and what is about to lapse at the counter (a prescription
authorization not dispensed, 24 hours before it ends, to the office and to the pharmacy holding an RDA for it;
an RDA, 4 hours before it ends, to the pharmacy). Stored as notifications (`rems.program.notifications`), sent
by the delivery sweep."""

from datetime import timedelta

from django.db import transaction

from rems.core.reminders import AUTHORIZATION_WARNING, DUE_SOON, due_text, patient_dues
from rems.core.wording import plural
from rems.program.models import NotificationKind, Patient, Program, Status
from rems.program.notifications import (
    PLAN_BATCH,
    due_now,
    notification_create,
    pharmacy_staff,
    plan_certification_reminders,
    prescriber_office,
)
from rems.program.selectors import rule_set_in_force

from .facts import patient_fact
from .models import OPEN_PRESCRIPTION_STATUSES, DispenseAuthorization, DispenseStatus, Prescription
from .outlooks import patient_histories

RDA_WARNING = timedelta(hours=4)


# kind of due -> [(notification kind, how long before it is due it is sent, title)]
_PATIENT_NOTIFICATIONS = {
    "pregnancy_test": [(NotificationKind.PREGNANCY_TEST_DUE_SOON, DUE_SOON,
                        f"{{label}} due in {plural(DUE_SOON.days, 'day')}"),
                       (NotificationKind.PREGNANCY_TEST_DUE, timedelta(0), "{label} due")],
    "survey": [(NotificationKind.SURVEY_DUE, timedelta(0), "{label} due")],
    "blood_count": [(NotificationKind.BLOOD_COUNT_DUE, timedelta(0), "{label} due")],
}


def plan_patient_reminders(*, now, batch_size=PLAN_BATCH):
    """Create the reminders whose time has come for every patient in therapy, in batches keyed on the patient
    id: each batch's histories are read as the patient list reads them, a fixed number of queries a program."""
    counts, offices = {}, {}
    rule_sets = {program.pk: rule_set_in_force(program=program, now=now).parameters
                 for program in Program.objects.all()}
    last_id = None
    while True:
        patients = Patient.objects.filter(status=Status.ACTIVE, therapy_started_at__isnull=False).order_by("pk")
        if last_id is not None:
            patients = patients.filter(pk__gt=last_id)
        batch = list(patients[:batch_size])
        by_program = {}
        for patient in batch:
            by_program.setdefault(patient.program_id, []).append(patient)
        with transaction.atomic():
            for program_id, group in by_program.items():
                params = rule_sets.get(program_id)
                histories = patient_histories(group, params, now)
                for patient in group:
                    dues = patient_dues(patient=patient_fact(patient), history=histories[patient.pk], params=params,
                                        now=now)
                    _remind(patient, dues, params, now, counts, offices)
        if len(batch) < batch_size:
            return counts
        last_id = batch[-1].pk


def _remind(patient, dues, params, now, counts, offices):
    for due in dues:
        for kind, lead, title in _PATIENT_NOTIFICATIONS[due.kind]:
            send_at = due.due_at - lead
            if not due_now(send_at, now):
                continue
            if patient.prescriber_id not in offices:
                offices[patient.prescriber_id] = prescriber_office(patient.prescriber_id)
            created = notification_create(
                recipients=offices[patient.prescriber_id], kind=kind, subject_type="patient",
                subject_id=patient.pk, due_on=due.due_at.date(), send_at=send_at, now=now,
                title=title.format(label=due.label),
                enqueue=False,
                body=f"Patient {str(patient.pk)[:8]} ({patient.risk_category}): {due_text(due)}",
            )
            counts[kind] = counts.get(kind, 0) + len(created)


def plan_lapse_reminders(*, now):
    """Authorizations about to lapse undispensed, and RDAs about to expire."""
    counts = {}

    def add(kind, created):
        counts[kind] = counts.get(kind, 0) + len(created)

    for rx in Prescription.objects.filter(
        status__in=OPEN_PRESCRIPTION_STATUSES, expires_at__gt=now, expires_at__lte=now + AUTHORIZATION_WARNING
    ).iterator(chunk_size=PLAN_BATCH):
        holders = DispenseAuthorization.objects.filter(prescription=rx, status=DispenseStatus.APPROVED)
        recipients = prescriber_office(rx.prescriber_id)
        for rda in holders:
            recipients += pharmacy_staff(rda.pharmacy_id)
        with transaction.atomic():
            add(NotificationKind.AUTHORIZATION_EXPIRING, notification_create(
                recipients=recipients, kind=NotificationKind.AUTHORIZATION_EXPIRING, subject_type="prescription",
                subject_id=rx.pk, due_on=rx.expires_at.date(), send_at=rx.expires_at - AUTHORIZATION_WARNING,
                now=now, enqueue=False, title=f"Prescription authorization expires within "
                      f"{plural(int(AUTHORIZATION_WARNING.total_seconds() // 3600), 'hour')}",
                body=f"Authorization {rx.authorization_number} expires undispensed at {rx.expires_at:%Y-%m-%d %H:%M} UTC.",
            ))
    for rda in DispenseAuthorization.objects.filter(
        status=DispenseStatus.APPROVED, expires_at__gt=now, expires_at__lte=now + RDA_WARNING
    ).iterator(chunk_size=PLAN_BATCH):
        with transaction.atomic():
            add(NotificationKind.RDA_EXPIRING, notification_create(
                recipients=pharmacy_staff(rda.pharmacy_id), kind=NotificationKind.RDA_EXPIRING,
                subject_type="dispense_authorization", subject_id=rda.pk, due_on=rda.expires_at.date(),
                send_at=rda.expires_at - RDA_WARNING, now=now, enqueue=False,
                title="Dispense authorization about to expire",
                body=f"RDA {rda.rda_number} expires at {rda.expires_at:%Y-%m-%d %H:%M} UTC if not dispensed.",
            ))
    return counts


def plan_expiry_reminders(*, now):
    """Everything about to end: authorizations and RDAs (above), and certifications."""
    return {**plan_lapse_reminders(now=now), **plan_certification_reminders(now=now)}


def plan_reminders(*, now):
    """The periodic planner: every reminder due now (patients in therapy, and everything about to end)."""
    return {**plan_patient_reminders(now=now), **plan_expiry_reminders(now=now)}
