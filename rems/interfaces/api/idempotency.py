"""`Idempotency-Key` on POSTs that create a decision or a record.

The key is claimed with `INSERT ... ON CONFLICT DO NOTHING` inside the same transaction as the work, so a
concurrent repeat waits for the first to commit and then replays its answer; a failed first attempt rolls
its claim back with everything else.
"""

import hashlib
import json
import re

from django.db import transaction
from django.utils import timezone
from rest_framework.response import Response

from rems.program.idempotency import idempotency_answer_store, idempotency_claim

from .problems import InvalidInput

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _request_hash(request):
    try:
        body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        body = repr(request.data)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


SHOWN_ONCE = "shown once, in the first answer; issue a new key if it was lost"


def idempotent(request, handle, *, secret_fields=()):
    """Run `handle()` -> Response once per (user, Idempotency-Key); replay the stored answer for a repeat.
    `secret_fields` (an API key) are never stored: a replay says the value was shown once."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return handle()
    if not _KEY.match(key):
        raise InvalidInput("Idempotency-Key", "An Idempotency-Key is 1 to 255 visible ASCII characters.")
    with transaction.atomic():
        claimed, record = idempotency_claim(user=request.user, key=key, method=request.method, path=request.path,
                                            request_hash=_request_hash(request), now=timezone.now())
        if record is not None:
            response = Response(record.response_body, status=record.response_status)
            response["Idempotent-Replayed"] = "true"
            return response
        response = handle()
        stored = response.data
        if secret_fields and isinstance(stored, dict):
            stored = {**stored, **{name: SHOWN_ONCE for name in secret_fields if name in stored}}
        idempotency_answer_store(record_id=claimed, status=response.status_code, body=stored)
        return response
