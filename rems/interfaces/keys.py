"""API keys, as the API and the FHIR endpoint take them: the key's user, with the prescriber or pharmacy it acts
for and whether that party is barred, in one small prepared statement on the key's unique hash. Expired and
revoked keys, and inactive users, are refused; each refusal is logged (at most once a minute).

Nothing is cached: every request reads the key's row, so a key revoked or a user deactivated is refused on the very
next request, in every process. What is saved is the work around the read: the statement is built once per
process (from the ORM's own query, so that the barred-party rule stays `party_barred_expression`'s) and prepared
once per connection.
"""

from django.db import connection

from accounts.models import ApiKey, User
from accounts.services import api_key_hash, api_key_use, auth_failure_log
from rems.prepared import CompiledOnce
from rems.program.models import Pharmacy, Prescriber
from rems.program.selectors import party_barred_expression


class KeyRefused(Exception):
    """The key is unknown, revoked, expired, or its user inactive; the message says which, to its holder."""


def _fields(model):
    return [field.attname for field in model._meta.concrete_fields]


_PARTS = ((ApiKey, ""), (User, "user__"), (Pharmacy, "user__pharmacy__"), (Prescriber, "user__prescriber__"))
_COLUMNS = [f"{prefix}{name}" for model, prefix in _PARTS for name in _fields(model)]
# The key lookup, by the key's hash: compiled by the ORM once per process.
_LOOKUP = CompiledOnce(lambda key_hash: (ApiKey.objects.filter(key_hash=key_hash)
                                         .annotate(party_barred=party_barred_expression("user__"))
                                         .values_list(*_COLUMNS, "party_barred")), "key-hash-placeholder")


def _key_row(key):
    return _LOOKUP.fetch_one(api_key_hash(key))


def _instances(row):
    """The key, its user (with the party it acts for attached, and `party_barred`) from the statement's row."""
    instances, at = [], 0
    for model, _ in _PARTS:
        names = _fields(model)
        values = row[at:at + len(names)]
        at += len(names)
        instances.append(model.from_db(connection.alias, names, values) if values[0] is not None else None)
    api_key, user, pharmacy, prescriber = instances
    User._meta.get_field("pharmacy").set_cached_value(user, pharmacy)
    User._meta.get_field("prescriber").set_cached_value(user, prescriber)
    ApiKey._meta.get_field("user").set_cached_value(api_key, user)
    user.party_barred = row[at]
    return api_key, user


def key_user(key, now):
    """The user of API key `key` and the key, or KeyRefused."""
    row = _key_row(key)
    api_key, user = _instances(row) if row is not None else (None, None)
    if api_key is None or api_key.revoked_at is not None or not user.is_active:
        auth_failure_log(key=key, now=now, reason=(
            "unknown or revoked key" if api_key is None or api_key.revoked_at else "user inactive"))
        raise KeyRefused("Invalid or revoked API key.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        auth_failure_log(key=key, now=now, reason="expired key")
        raise KeyRefused("This API key has expired.")
    api_key_use(api_key=api_key, now=now)
    return user, api_key
