"""The compliance log's checkpoint, every minute."""

import logging

from celery import shared_task
from django.utils import timezone

from rems.compliance_log import checkpoints

logger = logging.getLogger(__name__)


@shared_task(name="rems.log_checkpoint", acks_late=True, ignore_result=True)
def log_checkpoint():
    """Write a signed checkpoint of every chain's newest entry. Contradictions with the previous checkpoint are
    logged as errors by the service and kept in the checkpoint."""
    checkpoint, broken = checkpoints.checkpoint_write(now=timezone.now())
    return {"checkpoint": checkpoint.id, "chains": len(checkpoint.anchors), "contradictions": len(broken)}
