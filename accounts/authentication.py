from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from rems.audit import log_entry_write

from .models import ApiKey
from .services import api_key_hash, party_barred_expression
from .throttling import first_in_window

# last_used_at is written at most this often per key, so that reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>`. Expired and revoked keys, and inactive users, are refused."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give the header as `Authorization: Token <key>`.")
        try:
            key = header[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        now = timezone.now()
        api_key = (
            ApiKey.objects.select_related("user", "user__pharmacy", "user__prescriber").annotate(party_barred=party_barred_expression("user__"))
            .filter(key_hash=api_key_hash(key)).first()
        )
        if api_key is None or api_key.revoked_at is not None or not api_key.user.is_active:
            _log_failure(key, now, "unknown or revoked key" if api_key is None or api_key.revoked_at else "user inactive")
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        if api_key.expires_at is not None and api_key.expires_at <= now:
            _log_failure(key, now, "expired key")
            raise exceptions.AuthenticationFailed("This API key has expired.")
        api_key.user.party_barred = api_key.party_barred
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword


def _log_failure(key, now, reason):
    # The key's first characters only: enough to recognise a leaked or mistyped key, never enough to use it.
    # The first failure of each minute is logged: enough to see an attack, and nobody can flood the log by
    # sending made-up keys (the 401s themselves are in the request log).
    if not first_in_window("authfail", now):
        return
    log_entry_write(actor=None, action="security.auth_failed", outcome="refused", object_type="api_key",
                    object_id=key[:10], now=now, detail={"reason": reason})
