"""Reminders and alerts: planned as rows in the database, then delivered by email (and listed in the app).

Nothing is held only in the broker. A notification is stored first, in the transaction of whatever caused it;
after commit a task to deliver it at once is published, and the periodic delivery sweep sends whatever is due and
still pending, so a lost message, a dead worker or a broker outage only delays a delivery. Delivery locks the
row (`FOR UPDATE SKIP LOCKED`) and sends only what is still pending, so a task delivered twice sends once.

The request that stored an alert never waits for the broker: it hands the ids to this process's publisher
thread and answers. The thread publishes them (each call bounded by `REMS_BROKER_TIMEOUT`); if the broker is
down or frozen, or the process ends first, the delivery sweep sends them once it can, within a minute of the
broker being back. So a frozen Redis delays an alert; it never delays, fails or loses the decision that raised
it, and the alert itself is never lost.
"""

import logging
import os
import queue
import threading
import uuid
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Q

from accounts.models import PHARMACY_ROLES, PRESCRIBER_ROLES, Role, User

from .models import (
    Certification,
    Notification,
    NotificationKind,
    NotificationState,
    Status,
)

logger = logging.getLogger(__name__)

# The task that delivers one notification, by its name: the worker's task of that name calls
# `notification_deliver`. The delivery sweep sends whatever that task did not.
DELIVER_NOTIFICATION_TASK = "rems.deliver_notification"
MAX_ATTEMPTS = 8
HIGH = "high"
# Certifications are reminded of 30 and 7 days before their end (the patients' reminders, and authorizations
# and RDAs about to lapse: `dispensing.reminders`).
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
    queue_name = settings.REMS_ALERTS_QUEUE if priority == HIGH else settings.CELERY_TASK_DEFAULT_QUEUE
    _publisher.submit([str(i) for i in ids], queue_name)


def _publish(ids, queue_name):
    for notification_id in ids:
        try:
            current_app.send_task(DELIVER_NOTIFICATION_TASK, args=[notification_id], queue=queue_name)
        except Exception as exc:  # noqa: BLE001 - the delivery sweep sends them once the broker is back
            logger.warning("broker unavailable, %d notification(s) left to the delivery sweep: %s",
                           len(ids), type(exc).__name__)
            return  # one failed publish is enough to know; the rest would wait as long


class _Publisher:
    """One thread per process that publishes the tasks of new notifications, so that no request waits for the
    broker. At most `LIMIT` batches wait for it; beyond that (a broker frozen for long), they are left to the
    delivery sweep."""

    LIMIT = 1000

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._queue = None

    def submit(self, ids, queue_name):
        try:
            self._started().put_nowait((ids, queue_name))
        except queue.Full:
            logger.warning("%d notification(s) left to the delivery sweep: the publisher is behind", len(ids))

    def _started(self):
        with self._lock:
            if self._pid != os.getpid():  # first use, or a process forked from one that had started it
                self._queue = queue.Queue(maxsize=self.LIMIT)
                threading.Thread(target=self._run, args=(self._queue,), name="rems-publisher", daemon=True).start()
                self._pid = os.getpid()
            return self._queue

    @staticmethod
    def _run(batches):
        while True:
            _publish(*batches.get())


_publisher = _Publisher()


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
def due_now(send_at, now):
    """Whether a reminder whose time is `send_at` is to be created at `now`: its time has come, and not so long
    ago that it would only be noise (`STALE_AFTER`)."""
    return send_at <= now and now - send_at <= STALE_AFTER


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
