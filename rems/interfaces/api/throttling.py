"""Dispense-authorization requests limited per API key (or browser user) and per pharmacy, per minute, with the
counts the portal's counter shares (`accounts.throttling`)."""

from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from accounts.throttling import WINDOW, dispense_rate_exceeded


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
