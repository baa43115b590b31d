"""Throttling of dispense-authorization requests per API key and per pharmacy, counted in PostgreSQL: every
process sees the same count, and the count does not depend on the broker."""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

WINDOW = timedelta(minutes=1)


def count_requests(scopes, now):
    """Add one request to each scope's current window; return ({scope: count}, the window's start)."""
    window = now.replace(second=0, microsecond=0)
    values = ", ".join(["(%s, %s, 1)"] * len(scopes))
    params = [p for scope in scopes for p in (scope, window)]
    with transaction.atomic(), connection.cursor() as cursor:
        # A counter need not survive a crash: its commit does not wait for the disk, so a throttled request costs
        # no extra flush.
        cursor.execute("SET LOCAL synchronous_commit TO off")
        cursor.execute(
            f"INSERT INTO accounts_requestcounter (scope, window_start, count) VALUES {values} "
            "ON CONFLICT (scope, window_start) DO UPDATE SET count = accounts_requestcounter.count + 1 "
            "RETURNING scope, count",
            params,
        )
        return dict(cursor.fetchall()), window


def dispense_rate_exceeded(user, caller, now):
    """Count one dispense request against the caller's limit (an API key, or a browser user) and the pharmacy's;
    return (whether either is exceeded, the window's start). The API and the portal's counter share it."""
    scopes = {caller: settings.REMS_DISPENSE_RATE_PER_KEY}
    if user.pharmacy_id:
        scopes[f"pharmacy:{user.pharmacy_id}"] = settings.REMS_DISPENSE_RATE_PER_PHARMACY
    counts, window = count_requests(list(scopes), now)
    return any(counts[scope] > limit for scope, limit in scopes.items()), window


class DispenseThrottle(BaseThrottle):
    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        user = request.user
        caller = f"key:{request.auth.pk}" if getattr(request.auth, "pk", None) else f"user:{user.pk}"
        now = timezone.now()
        exceeded, window = dispense_rate_exceeded(user, caller, now)
        self.wait_seconds = (window + WINDOW - now).total_seconds()
        return not exceeded

    def wait(self):
        return self.wait_seconds


def first_in_window(scope, now):
    """Count an event; True only for the first of its kind in the current minute."""
    counts, _ = count_requests([scope], now)
    return counts[scope] == 1
