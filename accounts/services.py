"""Users and API keys. A key is shown once, when issued; only its SHA-256 is stored. Users act for a prescriber,
a pharmacy or the program, which they know by id only."""

import hashlib
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused

from .models import PHARMACY_ROLES, PRESCRIBER_ROLES, ApiKey, Role, User
from .throttling import first_in_window

KEY_PREFIX = "rems_"
DEFAULT_KEY_LIFETIME = timedelta(days=365)


def api_key_hash(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class CannotCreateUser(ActionRefused):
    code = "invalid"


class UsernameTaken(CannotCreateUser):
    code = "duplicate"


@transaction.atomic
def user_create(*, actor, username, role, now, prescriber=None, pharmacy=None, email=""):
    """A user with a role, acting for exactly one prescriber (prescriber, delegate), one pharmacy (pharmacist,
    pharmacy manager) or the program (admin, auditor). No password: the user signs in with a key, or is given a
    password by an administrator."""
    if role not in Role.values:
        raise CannotCreateUser(f"Unknown role {role!r}.")
    if role in PRESCRIBER_ROLES and (prescriber is None or pharmacy is not None):
        raise CannotCreateUser(f"A {role} acts for exactly one prescriber: give `prescriber` only.")
    if role in PHARMACY_ROLES and (pharmacy is None or prescriber is not None):
        raise CannotCreateUser(f"A {role} acts for exactly one pharmacy: give `pharmacy` only.")
    if role in (Role.ADMIN, Role.AUDITOR) and (prescriber is not None or pharmacy is not None):
        raise CannotCreateUser(f"An {role} acts for the program, not for a prescriber or a pharmacy.")
    try:
        with transaction.atomic():
            user = User.objects.create(
                username=username, role=role, prescriber=prescriber, pharmacy=pharmacy, email=email,
                is_staff=role == Role.ADMIN,
            )
    except IntegrityError:
        raise UsernameTaken(f"The username {username!r} is taken.") from None
    user.set_unusable_password()
    user.save(update_fields=["password"])
    log_entry_write(
        actor=actor, action=Action.USER_CREATE, outcome="recorded", object_type="user", object_id=user.pk, now=now,
        prescriber_id=prescriber.pk if prescriber else None, pharmacy_id=pharmacy.pk if pharmacy else None,
        detail={"username": username, "role": role},
    )
    return user


@transaction.atomic
def api_key_issue(*, actor, user, now, label="", lifetime=DEFAULT_KEY_LIFETIME):
    """Issue a new key for `user`. Returns (ApiKey, the key itself): the caller shows the key once."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        user=user, prefix=key[: len(KEY_PREFIX) + 6], key_hash=api_key_hash(key), label=label, created_at=now,
        expires_at=now + lifetime if lifetime else None,
    )
    log_entry_write(
        actor=actor, action=Action.API_KEY_ISSUE, outcome="recorded", object_type="api_key", object_id=api_key.pk, now=now,
        detail={"user_id": user.pk, "prefix": api_key.prefix,
                "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None},
    )
    return api_key, key


class CannotRevokeKey(ActionRefused):
    pass


@transaction.atomic
def api_key_revoke(*, actor, api_key, now):
    changed = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if not changed:
        raise CannotRevokeKey("This key is already revoked.")
    log_entry_write(
        actor=actor, action=Action.API_KEY_REVOKE, outcome="revoked", object_type="api_key", object_id=api_key.pk, now=now,
        detail={"user_id": api_key.user_id, "prefix": api_key.prefix},
    )
    api_key.refresh_from_db()
    return api_key


class CannotChangeUser(ActionRefused):
    pass


class CannotDeactivateSelf(CannotChangeUser):
    """An administrator cannot lock themselves out."""

    code = "self_deactivation"


@transaction.atomic
def user_deactivate(*, actor, user, reason, now):
    """The user can no longer log in or use any key; their keys are revoked."""
    if actor is not None and actor.pk == user.pk:
        raise CannotDeactivateSelf("You cannot deactivate yourself.")
    changed = User.objects.filter(pk=user.pk, is_active=True).update(is_active=False)
    if not changed:
        raise CannotChangeUser("This user is already deactivated.")
    ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    log_entry_write(
        actor=actor, action=Action.USER_DEACTIVATE, outcome="deactivated", object_type="user", object_id=user.pk, now=now,
        prescriber_id=user.prescriber_id, pharmacy_id=user.pharmacy_id,
        detail={"username": user.username, "role": user.role, "reason": reason},
    )
    user.refresh_from_db()
    return user


# last_used_at is written at most this often per key, so that most reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_use(*, api_key, now):
    """Note that `api_key` was used now (to the minute)."""
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)


def auth_failure_log(*, key, reason, now):
    """A refused API key. The first of each minute is logged: enough to see an attack, and nobody can flood the
    log with made-up keys. The key's first characters only: enough to recognise a leaked or mistyped key, never
    enough to use it."""
    if not first_in_window("authfail", now):
        return
    log_entry_write(actor=None, action=Action.SECURITY_AUTH_FAILED, outcome="refused", object_type="api_key",
                    object_id=key[:10], now=now, detail={"reason": reason})


def permission_refusal_log(*, user, path, method, reason, now):
    """A request refused for the user's role or party. One entry per user and minute is enough to see it; a
    script hammering a route cannot flood the log."""
    if not first_in_window(f"refused:{user.pk}", now):
        return
    log_entry_write(
        actor=user, action=Action.SECURITY_PERMISSION_REFUSED, outcome="refused", object_type="route",
        object_id=path[:64], now=now, prescriber_id=user.prescriber_id, pharmacy_id=user.pharmacy_id,
        detail={"method": method, "reason": reason},
    )
