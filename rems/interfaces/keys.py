"""API keys, as the API and the FHIR endpoint take them: the key's user, in one query with whether the party it
acts for is barred. Expired and revoked keys, and inactive users, are refused; each refusal is logged (at most
once a minute)."""

from accounts.models import ApiKey
from accounts.services import api_key_hash, api_key_use, auth_failure_log
from rems.program.selectors import party_barred_expression


class KeyRefused(Exception):
    """The key is unknown, revoked, expired, or its user inactive; the message says which, to its holder."""


def key_user(key, now):
    """The user of API key `key` and the key, or KeyRefused."""
    api_key = (
        ApiKey.objects.select_related("user", "user__pharmacy", "user__prescriber")
        .annotate(party_barred=party_barred_expression("user__"))
        .filter(key_hash=api_key_hash(key)).first()
    )
    if api_key is None or api_key.revoked_at is not None or not api_key.user.is_active:
        auth_failure_log(key=key, now=now, reason=(
            "unknown or revoked key" if api_key is None or api_key.revoked_at else "user inactive"))
        raise KeyRefused("Invalid or revoked API key.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        auth_failure_log(key=key, now=now, reason="expired key")
        raise KeyRefused("This API key has expired.")
    api_key.user.party_barred = api_key.party_barred
    api_key_use(api_key=api_key, now=now)
    return api_key.user, api_key
