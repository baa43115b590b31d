"""Reminders and alerts: planning them, and delivering what is due."""

import logging

from celery import shared_task
from django.utils import timezone

from dispensing.reminders import plan_reminders as reminders_plan
from rems.program import notifications

logger = logging.getLogger(__name__)


@shared_task(name=notifications.DELIVER_NOTIFICATION_TASK, acks_late=True, ignore_result=True)
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
    counts = reminders_plan(now=timezone.now())
    if counts:
        logger.info("reminders planned: %s", counts)
    return counts
