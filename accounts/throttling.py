"""Requests counted per scope (an API key, a pharmacy, a kind of event) and minute, in PostgreSQL: every process
sees the same count, and the count does not depend on the broker. The dispense-request limits and the
once-a-minute logging of refusals are built on it."""

from datetime import timedelta

from django.conf import settings
from django.db import connection

from rems.prepared import prepared_cursor

from .models import RequestCounter

WINDOW = timedelta(minutes=1)
# Counters older than this are purged by the expiry sweep.
COUNTER_RETENTION = timedelta(hours=1)


_COUNT_SQL = """INSERT INTO accounts_requestcounter (scope, window_start, count)
SELECT scope, %(window)s::timestamptz, 1 FROM unnest(%(scopes)s::text[]) scope{quick}
ON CONFLICT (scope, window_start) DO UPDATE SET count = accounts_requestcounter.count + 1
RETURNING scope, count"""
# Alone in its transaction (one statement, committed by itself), a count need not survive a crash: its commit does
# not wait for the disk, so a counted request costs no extra flush. Within a caller's transaction it commits with
# the caller's work, as durably as that work asks.
_COUNT_ALONE = _COUNT_SQL.format(quick=", (SELECT set_config('synchronous_commit', 'off', true)) quick")
_COUNT_WITHIN = _COUNT_SQL.format(quick="")


def count_requests(scopes, now):
    """Add one request to each scope's current window; return ({scope: count}, the window's start). One
    statement, prepared."""
    window = now.replace(second=0, microsecond=0)
    with prepared_cursor() as cursor:
        alone = connection.get_autocommit() and not connection.in_atomic_block
        cursor.execute(_COUNT_ALONE if alone else _COUNT_WITHIN,
                       {"window": window, "scopes": list(scopes)})
        return dict(cursor.fetchall()), window


def dispense_rate_exceeded(user, caller, now):
    """Count one dispense request against the caller's limit (an API key, or a browser user) and the pharmacy's;
    return (whether either is exceeded, the window's start). The API and the portal's counter share it."""
    scopes = {caller: settings.REMS_DISPENSE_RATE_PER_KEY}
    if user.pharmacy_id:
        scopes[f"pharmacy:{user.pharmacy_id}"] = settings.REMS_DISPENSE_RATE_PER_PHARMACY
    counts, window = count_requests(list(scopes), now)
    return any(counts[scope] > limit for scope, limit in scopes.items()), window


def first_in_window(scope, now):
    """Count an event; True only for the first of its kind in the current minute."""
    counts, _ = count_requests([scope], now)
    return counts[scope] == 1


def request_counters_purge(*, now):
    """Delete the counters of windows long past. Returns how many."""
    return RequestCounter.objects.filter(window_start__lt=now - COUNTER_RETENTION).delete()[0]
