"""Periodic and on-demand work for reminders and alerts. Thin: each task calls one service that takes `now`."""

import logging

from celery import shared_task
from django.utils import timezone

from . import notifications

logger = logging.getLogger(__name__)


@shared_task(name="rems.deliver_notification", acks_late=True, ignore_result=True)
def deliver_notification(notification_id):
    return notifications.notification_deliver(notification_id=notification_id, now=timezone.now())


@shared_task(name="rems.deliver_due", acks_late=True, ignore_result=True)
def deliver_due():
    counts = notifications.deliver_due(now=timezone.now())
    if counts["sent"] or counts["failed"]:
        logger.info("notifications delivered: %s", counts)
    return counts


@shared_task(name="rems.plan_reminders", acks_late=True, ignore_result=True)
def plan_reminders():
    now = timezone.now()
    counts = {**notifications.plan_patient_reminders(now=now), **notifications.plan_expiry_reminders(now=now)}
    if counts:
        logger.info("reminders planned: %s", counts)
    return counts
