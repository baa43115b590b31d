"""Users and API keys. A key is shown once, when issued; only its SHA-256 is stored."""

import hashlib
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q

from rems.models import Certification, Status

from rems.audit import log_entry_write
from rems.errors import ActionRefused

from .models import PHARMACY_ROLES, PRESCRIBER_ROLES, ApiKey, Role, User

KEY_PREFIX = "rems_"
DEFAULT_KEY_LIFETIME = timedelta(days=365)


def api_key_hash(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class CannotCreateUser(ActionRefused):
    status = 400
    code = "invalid"


@transaction.atomic
def user_create(*, actor, username, role, now, prescriber=None, pharmacy=None, email=""):
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
        raise CannotCreateUser(f"The username {username!r} is taken.", code="duplicate", status=409) from None
    user.set_unusable_password()
    user.save(update_fields=["password"])
    log_entry_write(
        actor=actor, action="user.create", outcome="recorded", object_type="user", object_id=user.pk, now=now,
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
        actor=actor, action="api_key.issue", outcome="recorded", object_type="api_key", object_id=api_key.pk, now=now,
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
        actor=actor, action="api_key.revoke", outcome="revoked", object_type="api_key", object_id=api_key.pk, now=now,
        detail={"user_id": api_key.user_id, "prefix": api_key.prefix},
    )
    api_key.refresh_from_db()
    return api_key


BARRED_STATUSES = [Status.SUSPENDED, Status.REVOKED]


def party_barred_expression(prefix=""):
    """True when the prescriber or pharmacy the user acts for has a suspended or revoked certification: every
    operation acting for it is then refused (decisions are still evaluated, and denied by their gates)."""
    return Exists(Certification.objects.filter(
        Q(prescriber_id=OuterRef(f"{prefix}prescriber_id")) | Q(pharmacy_id=OuterRef(f"{prefix}pharmacy_id")),
        status__in=BARRED_STATUSES,
    ))


def party_is_barred(user):
    barred = getattr(user, "party_barred", None)
    if barred is None:
        if not (user.prescriber_id or user.pharmacy_id):
            barred = False
        else:
            barred = User.objects.filter(pk=user.pk).annotate(b=party_barred_expression()).values_list("b", flat=True)[0]
        user.party_barred = barred
    return barred


class CannotChangeUser(ActionRefused):
    pass


@transaction.atomic
def user_deactivate(*, actor, user, reason, now):
    """The user can no longer log in or use any key; their keys are revoked."""
    changed = User.objects.filter(pk=user.pk, is_active=True).update(is_active=False)
    if not changed:
        raise CannotChangeUser("This user is already deactivated.")
    ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    log_entry_write(
        actor=actor, action="user.deactivate", outcome="deactivated", object_type="user", object_id=user.pk, now=now,
        prescriber_id=user.prescriber_id, pharmacy_id=user.pharmacy_id,
        detail={"username": user.username, "role": user.role, "reason": reason},
    )
    user.refresh_from_db()
    return user
