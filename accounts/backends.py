"""Browser and admin-site logins: the password is checked by Django; repeated failures lock the username.

Only real usernames get a login state and an entry per failure (at most REMS_LOGIN_FAILURES before a lockout;
while locked, one entry a minute). A username nobody has is never stored: failures with made-up names are
counted together and logged once a minute, as bad API keys are, so that nobody can grow the log or the tables by
trying names. Both fail the same way, after the same password hashing.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import transaction
from django.utils import timezone

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write

from .models import LoginState, User
from .throttling import first_in_window

FAILURES_FORGOTTEN_AFTER = timedelta(hours=1)


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username:
            return None
        now = timezone.now()
        username = str(username)[:150]
        if not User.objects.filter(username=username).exists():
            super().authenticate(request, username=username, password=password, **kwargs)  # the same work
            if first_in_window("loginfail:unknown", now):
                log_entry_write(actor=None, action=Action.SECURITY_LOGIN_FAILED, outcome="failed", object_type="user",
                                object_id="", now=now,
                                detail={"reason": "unknown username", "logged": "the first of the minute"})
            return None
        with transaction.atomic():
            state, _ = LoginState.objects.select_for_update().get_or_create(username=username)
            if state.locked_until and state.locked_until > now:
                # The same password hashing as any other failure: a lockout is not told apart by its speed.
                User().set_password(password)
                if first_in_window(f"loginlocked:{state.pk}", now):
                    log_entry_write(actor=None, action=Action.SECURITY_LOGIN_REFUSED, outcome="locked",
                                    object_type="user", object_id=username, now=now,
                                    detail={"locked_until": state.locked_until.isoformat(),
                                            "logged": "the first of the minute"})
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
