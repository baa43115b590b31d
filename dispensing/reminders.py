"""Reminders of what is about to lapse at the counter: a prescription authorization not dispensed 24 hours
before it ends (to the office, and to the pharmacy holding an RDA for it), and an RDA 4 hours before it ends
(to the pharmacy). Stored as notifications (`rems.program.notifications`), sent by the delivery sweep."""

from datetime import timedelta

from django.db import transaction

from rems.program.models import NotificationKind
from rems.program.notifications import (
    PLAN_BATCH,
    notification_create,
    pharmacy_staff,
    plan_certification_reminders,
    plan_patient_reminders,
    prescriber_office,
)

from .models import OPEN_PRESCRIPTION_STATUSES, DispenseAuthorization, DispenseStatus, Prescription

AUTHORIZATION_WARNING = timedelta(hours=24)
RDA_WARNING = timedelta(hours=4)


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
                now=now, enqueue=False, title="Prescription authorization expires within 24 hours",
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
