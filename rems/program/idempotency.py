"""Stored answers to requests made with an `Idempotency-Key`: claimed in the transaction of the work, so that a
concurrent repeat waits for the first and then gets its answer; kept for a day. The HTTP side (the header, the
replay) is the API's (`rems.interfaces.api.idempotency`)."""

from datetime import timedelta

from django.db import connection

from rems.core.errors import ActionRefused

from .models import IdempotencyRecord

# Stored answers are kept for a day: enough for any retry, and no longer than needed, since they hold what was
# answered (names and dates of birth included).
IDEMPOTENCY_RETENTION = timedelta(hours=24)


class IdempotencyKeyReused(ActionRefused):
    code = "idempotency_key_reused"


def idempotency_claim(*, user, key, method, path, request_hash, now):
    """Claim `key` for this request inside the caller's transaction. Returns (the new record's id, None), or, for
    a repeat, (None, the stored record) whose answer the caller replays. A key reused for another request is
    refused."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO rems_idempotencyrecord
                (user_id, key, method, path, request_hash, response_status, response_body, created_at)
            VALUES (%s, %s, %s, %s, %s, 0, 'null'::jsonb, %s)
            ON CONFLICT (user_id, key) DO NOTHING
            RETURNING id
            """,
            [user.pk, key, method, path[:255], request_hash, now],
        )
        claimed = cursor.fetchone()
    if claimed is not None:
        return claimed[0], None
    record = IdempotencyRecord.objects.get(user=user, key=key)
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request; use a new key for a new request."
        )
    return None, record


def idempotency_answer_store(*, record_id, status, body):
    """Keep the answer of a claimed request, for its repeats."""
    IdempotencyRecord.objects.filter(pk=record_id).update(response_status=status, response_body=body)


def idempotency_records_purge(*, now, batch_size):
    """Delete the stored answers older than IDEMPOTENCY_RETENTION, in batches. Returns how many."""
    purged = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=now - IDEMPOTENCY_RETENTION)
            .values_list("pk", flat=True)[:batch_size]
        )
        purged += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            return purged
