"""Browser and admin-site logins: the password is checked by Django; repeated failures lock the username."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import transaction
from django.utils import timezone

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write

from .models import LoginState

FAILURES_FORGOTTEN_AFTER = timedelta(hours=1)


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username:
            return None
        now = timezone.now()
        username = str(username)[:150]
        with transaction.atomic():
            state, _ = LoginState.objects.select_for_update().get_or_create(username=username)
            if state.locked_until and state.locked_until > now:
                log_entry_write(actor=None, action=Action.SECURITY_LOGIN_REFUSED, outcome="locked", object_type="user",
                                object_id=username, now=now,
                                detail={"locked_until": state.locked_until.isoformat()})
                return None
            user = super().authenticate(request, username=username, password=password, **kwargs)
            if user is not None:
                state.failures, state.locked_until = 0, None
                state.save(update_fields=["failures", "locked_until"])
                log_entry_write(actor=user, action=Action.SECURITY_LOGIN, outcome="succeeded", object_type="user",
                                object_id=user.pk, now=now)
                return user
            if state.last_failure_at and state.last_failure_at < now - FAILURES_FORGOTTEN_AFTER:
                state.failures = 0  # old failures do not add up to a lockout
            state.failures += 1
            state.last_failure_at = now
            locked = state.failures >= settings.REMS_LOGIN_FAILURES
            if locked:
                state.locked_until = now + timedelta(minutes=settings.REMS_LOGIN_LOCKOUT_MINUTES)
                state.failures = 0
            state.save(update_fields=["failures", "last_failure_at", "locked_until"])
            log_entry_write(actor=None, action=Action.SECURITY_LOCKOUT if locked else Action.SECURITY_LOGIN_FAILED,
                            outcome="locked" if locked else "failed", object_type="user", object_id=username,
                            now=now, detail={"locked_until": state.locked_until.isoformat() if locked else None})
            return None
