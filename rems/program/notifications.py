"""Reminders and alerts: planned as rows in the database, then delivered by email (and listed in the app).

Nothing is held only in the broker. A notification is stored first, in the transaction of whatever caused it;
a task is enqueued after commit to deliver it at once, and the periodic delivery sweep sends whatever is due and
still pending, so a lost message, a dead worker or a broker outage only delays a delivery. Delivery locks the
row (`FOR UPDATE SKIP LOCKED`) and sends only what is still pending, so a task delivered twice sends once.
"""

import logging
import uuid
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Max, OuterRef, Q, Subquery

from accounts.models import PHARMACY_ROLES, PRESCRIBER_ROLES, Role, User

from .models import (
    Certification,
    Notification,
    NotificationKind,
    NotificationState,
    Patient,
    PatientSurvey,
    PregnancyTest,
    Program,
    Status,
)
from .selectors import rule_set_in_force

logger = logging.getLogger(__name__)

# The task that delivers one notification, by its name: the worker's task of that name calls
# `notification_deliver`. The delivery sweep sends whatever that task did not.
DELIVER_NOTIFICATION_TASK = "rems.deliver_notification"
MAX_ATTEMPTS = 8
HIGH = "high"
# Reminder times: FRP pregnancy tests two days before and on the due day; certifications 30 and 7 days before
# their end. (Authorizations and RDAs about to lapse: `dispensing.reminders`.)
TEST_DUE_SOON = timedelta(days=2)
# From the product description (a reminder, not a gate): blood counts weekly for 8 weeks, then monthly.
BLOOD_COUNT_WEEKLY_WEEKS = 8
BLOOD_COUNT_MONTHLY_DAYS = 30
# A reminder whose moment passed is still created late (after an outage of the planner, say), up to a week:
# an overdue test is worth a reminder; one for a moment long gone would only be noise.
STALE_AFTER = timedelta(days=7)
PLAN_BATCH = 1000


def _backoff(attempts):
    return timedelta(minutes=min(2 ** attempts, 60))


# --- Creating -------------------------------------------------------------------------------------------
def notification_create(*, recipients, kind, subject_type, subject_id, due_on, send_at, title, body, now,
                        priority="normal", enqueue=True):
    """Store one notification per recipient, once: a second call with the same recipient, kind, subject and due
    date creates nothing. With `enqueue`, those due now are handed to a worker after commit; planned reminders
    leave that to the delivery sweep, which sends them within a minute without a message each."""
    if not recipients:
        return []
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s, '', %s)"] * len(recipients))
    params = []
    for user in recipients:
        params += [uuid.uuid4(), user.pk, kind, priority, subject_type, str(subject_id), due_on, send_at, title, body,
                   send_at, now]
    with connection.cursor() as cursor:
        # One statement; a notification already there (same recipient, kind, subject, due date) is left alone.
        cursor.execute(
            f"INSERT INTO {Notification._meta.db_table} (id, recipient_id, kind, priority, subject_type, subject_id, "
            "due_on, send_at, title, body, state, attempts, next_attempt_at, last_error, created_at) "
            f"VALUES {values} ON CONFLICT (recipient_id, kind, subject_id, due_on) DO NOTHING RETURNING id",
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    if ids and enqueue and send_at <= now:
        transaction.on_commit(lambda: _enqueue(ids, priority))
    return ids


def _enqueue(ids, priority):
    queue = settings.REMS_ALERTS_QUEUE if priority == HIGH else settings.CELERY_TASK_DEFAULT_QUEUE
    for notification_id in ids:
        try:
            current_app.send_task(DELIVER_NOTIFICATION_TASK, args=[str(notification_id)], queue=queue, retry=False)
        except Exception as exc:  # noqa: BLE001 - the delivery sweep sends them once the broker is back
            logger.warning("broker unavailable, %d notification(s) left to the delivery sweep: %s",
                           len(ids), type(exc).__name__)
            return  # one failed publish is enough to know; do not hold the request up once per recipient


def prescriber_office(prescriber_id):
    """The active users of a prescriber's office: who is reminded of its patients and its certification."""
    return list(User.objects.filter(prescriber_id=prescriber_id, role__in=PRESCRIBER_ROLES, is_active=True))


def pharmacy_staff(pharmacy_id):
    """The active users of a pharmacy: who is reminded of its RDAs and its certification."""
    return list(User.objects.filter(pharmacy_id=pharmacy_id, role__in=PHARMACY_ROLES, is_active=True))


def administrators():
    """The active program administrators: who receives every alert."""
    return list(User.objects.filter(role=Role.ADMIN, is_active=True))


def positive_test_alert(*, patient, test, report, now):
    """A positive pregnancy test: an immediate, high-priority alert to every program administrator."""
    return notification_create(
        recipients=administrators(), kind=NotificationKind.POSITIVE_PREGNANCY_TEST, subject_type="pregnancy_report",
        subject_id=report.pk, due_on=now.date(), send_at=now, now=now, priority=HIGH,
        title="Positive pregnancy test: pregnancy report opened",
        body=(f"A positive pregnancy test collected on {test.collected_at:%Y-%m-%d} was recorded for patient "
              f"{patient.pk} in {patient.program.slug}. The enrollment is suspended and pregnancy report "
              f"{report.pk} is open; the sponsor reports it to the FDA."),
    )


def notification_mark_read(*, notification, now):
    """The recipient has read it (the first time counts)."""
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
    notification.refresh_from_db()
    return notification


# --- Delivering -----------------------------------------------------------------------------------------
def notification_deliver(*, notification_id, now):
    """Send one notification if it is still pending and due. Returns 'sent', 'retry', 'failed' or 'skipped'."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient")
            .filter(pk=notification_id, state=NotificationState.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if notification is None:
            return "skipped"  # already sent, not due yet, or being sent by another worker right now
        if not notification.recipient.is_active:
            notification.state = NotificationState.FAILED
            notification.last_error = "recipient deactivated"
            notification.save(update_fields=["state", "last_error"])
            return "failed"
        address = notification.recipient.email
        try:
            if address:
                EmailMessage(
                    subject=f"[REMS] {notification.title}", body=notification.body,
                    from_email=settings.DEFAULT_FROM_EMAIL, to=[address],
                    headers={"X-REMS-Notification": str(notification.pk)},
                ).send()
        except Exception as exc:  # noqa: BLE001 - any failure to send is retried with backoff
            notification.attempts += 1
            notification.last_error = f"{type(exc).__name__}: {exc}"[:500]
            if notification.attempts >= MAX_ATTEMPTS:
                notification.state = NotificationState.FAILED
            notification.next_attempt_at = now + _backoff(notification.attempts)
            notification.save(update_fields=["attempts", "last_error", "state", "next_attempt_at"])
            return "failed" if notification.state == NotificationState.FAILED else "retry"
        notification.state = NotificationState.SENT
        notification.sent_at = now
        notification.attempts += 1
        notification.save(update_fields=["state", "sent_at", "attempts"])
        return "sent"


def deliver_due(*, now, batch_size=200):
    """Send everything pending whose time has come, in bounded batches."""
    counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    seen = set()
    while True:
        ids = list(
            Notification.objects.filter(state=NotificationState.PENDING, next_attempt_at__lte=now)
            .exclude(pk__in=seen).order_by("next_attempt_at").values_list("pk", flat=True)[:batch_size]
        )
        for notification_id in ids:
            counts[notification_deliver(notification_id=notification_id, now=now)] += 1
        seen.update(ids)
        if len(ids) < batch_size:
            return counts


# --- Planning -------------------------------------------------------------------------------------------
def _at_midnight(day):
    return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)


def _due_now(send_at, now):
    return send_at <= now and now - send_at <= STALE_AFTER


def _short(patient_id):
    return str(patient_id)[:8]


def _plan_patient(patient, latest_test_at, now, params, counts, offices):
    def office_users():
        if patient.prescriber_id not in offices:
            offices[patient.prescriber_id] = prescriber_office(patient.prescriber_id)
        return offices[patient.prescriber_id]

    def remind(kind, due_on, send_at, title, body):
        if _due_now(send_at, now) and office_users():
            created = notification_create(
                recipients=office_users(), kind=kind, subject_type="patient", subject_id=patient.pk,
                due_on=due_on, send_at=send_at, title=title, body=body, now=now, enqueue=False,
            )
            counts[kind] = counts.get(kind, 0) + len(created)

    start = patient.therapy_started_at
    # FRP pregnancy tests during therapy: weekly for the first weeks, then every 4 (regular) or 2 weeks.
    if params and patient.risk_category in params.reproductive_potential_categories and latest_test_at:
        weekly_until = start + timedelta(weeks=params.weekly_testing_weeks)
        if latest_test_at < weekly_until:
            interval = params.test_interval_days_initial
        elif patient.irregular_cycles:
            interval = params.test_interval_days_irregular
        else:
            interval = params.test_interval_days_regular
        due_at = latest_test_at + timedelta(days=interval)
        due_on = due_at.date()
        body = (f"Patient {_short(patient.pk)} ({patient.risk_category}): the next pregnancy test is due on "
                f"{due_on} ({interval}-day interval).")
        remind(NotificationKind.PREGNANCY_TEST_DUE_SOON, due_on, _at_midnight(due_on) - TEST_DUE_SOON,
               "Pregnancy test due in 2 days", body)
        remind(NotificationKind.PREGNANCY_TEST_DUE, due_on, _at_midnight(due_on), "Pregnancy test due today", body)
    # Blood counts: weekly for 8 weeks, then monthly.
    elapsed = now - start
    weekly = timedelta(weeks=BLOOD_COUNT_WEEKLY_WEEKS)
    if elapsed < weekly:
        last_point = start + timedelta(weeks=int(elapsed / timedelta(weeks=1)))
    else:
        months = int((elapsed - weekly) / timedelta(days=BLOOD_COUNT_MONTHLY_DAYS))
        last_point = start + weekly + timedelta(days=BLOOD_COUNT_MONTHLY_DAYS * months)
    if last_point > start:
        remind(NotificationKind.BLOOD_COUNT_DUE, last_point.date(), last_point, "Complete blood count due",
               f"Patient {_short(patient.pk)}: a complete blood count is due on {last_point.date()} "
               "(weekly for the first 8 weeks of therapy, then monthly).")
    # Patient surveys, by the category's cadence (every 6 months for adult FNRP; monthly otherwise).
    if params:
        # Every-prescription categories: a survey before each prescription, so about once per supply.
        cadence = params.survey_interval_days.get(patient.risk_category, params.max_days_supply)
        survey_due = (patient.latest_survey_at or start) + timedelta(days=cadence)
        remind(NotificationKind.SURVEY_DUE, survey_due.date(), survey_due, "Patient survey due",
               f"Patient {_short(patient.pk)} ({patient.risk_category}): a patient survey is due on "
               f"{survey_due.date()}.")


def plan_patient_reminders(*, now, batch_size=PLAN_BATCH):
    """Create the reminders due now for every patient in therapy, in batches keyed on the patient id."""
    counts, offices = {}, {}
    params_by_program = {p.pk: rule_set_in_force(program=p, now=now).parameters for p in Program.objects.all()}
    latest_negative = (
        PregnancyTest.objects.filter(patient=OuterRef("pk"), result="negative").values("patient")
        .annotate(m=Max("collected_at")).values("m")
    )
    latest_survey = (
        PatientSurvey.objects.filter(patient=OuterRef("pk")).values("patient")
        .annotate(m=Max("completed_at")).values("m")
    )
    last_id = None
    while True:
        qs = (
            Patient.objects.filter(status=Status.ACTIVE, therapy_started_at__isnull=False)
            .annotate(latest_test_at=Subquery(latest_negative), latest_survey_at=Subquery(latest_survey))
            .order_by("pk")
        )
        if last_id is not None:
            qs = qs.filter(pk__gt=last_id)
        batch = list(qs[:batch_size])
        with transaction.atomic():
            for patient in batch:
                _plan_patient(patient, patient.latest_test_at, now, params_by_program.get(patient.program_id), counts,
                              offices)
        if len(batch) < batch_size:
            return counts
        last_id = batch[-1].pk


def plan_certification_reminders(*, now):
    """Certifications ending in 30 days, then in 7, to the office or the pharmacy certified."""
    counts = {}
    for days, after, kind in ((30, 7, NotificationKind.CERTIFICATION_EXPIRING_30),
                              (7, 0, NotificationKind.CERTIFICATION_EXPIRING_7)):
        # Within 7 days only the 7-day reminder is sent: not both at once.
        window = Q(expires_at__gt=now + timedelta(days=after), expires_at__lte=now + timedelta(days=days))
        for cert in Certification.objects.filter(window, status=Status.ACTIVE).select_related("program").iterator(
            chunk_size=PLAN_BATCH
        ):
            recipients = (prescriber_office(cert.prescriber_id) if cert.prescriber_id
                          else pharmacy_staff(cert.pharmacy_id))
            with transaction.atomic():
                created = notification_create(
                    recipients=recipients, kind=kind, subject_type="certification", subject_id=cert.pk,
                    due_on=cert.expires_at.date(), send_at=cert.expires_at - timedelta(days=days), now=now,
                    enqueue=False,
                    title=f"Certification in {cert.program.slug} ends within {days} days",
                    body=f"Certification {cert.pk} ends on {cert.expires_at:%Y-%m-%d}; renew it to keep prescribing "
                         "or dispensing.",
                )
            counts[kind] = counts.get(kind, 0) + len(created)
    return counts
