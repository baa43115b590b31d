"""The expiry sweep."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from dispensing import sweeps

logger = logging.getLogger(__name__)


@shared_task(name="dispensing.expire_lapsed", acks_late=True, ignore_result=True)
def expire_lapsed():
    counts = sweeps.expire_lapsed(now=timezone.now(), workers=settings.REMS_SWEEP_WORKERS)
    if any(counts.values()):
        logger.info("expired %s", counts)
    return counts
