"""Periodic work. Tasks are thin: each calls one service, which takes `now` and works on due rows only, so
running a task twice, or two beats by mistake, changes nothing more."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="dispensing.expire_lapsed", acks_late=True, ignore_result=True)
def expire_lapsed():
    counts = services.expire_lapsed(now=timezone.now(), workers=settings.REMS_SWEEP_WORKERS)
    if any(counts.values()):
        logger.info("expired %s", counts)
    return counts
