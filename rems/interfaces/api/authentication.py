from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiKey
from accounts.services import api_key_hash, api_key_use, auth_failure_log
from rems.program.selectors import party_barred_expression


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
        # One query: the key, its user, the party acted for, and whether that party is barred.
        api_key = (
            ApiKey.objects.select_related("user", "user__pharmacy", "user__prescriber")
            .annotate(party_barred=party_barred_expression("user__"))
            .filter(key_hash=api_key_hash(key)).first()
        )
        if api_key is None or api_key.revoked_at is not None or not api_key.user.is_active:
            auth_failure_log(key=key, now=now, reason=(
                "unknown or revoked key" if api_key is None or api_key.revoked_at else "user inactive"))
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        if api_key.expires_at is not None and api_key.expires_at <= now:
            auth_failure_log(key=key, now=now, reason="expired key")
            raise exceptions.AuthenticationFailed("This API key has expired.")
        api_key.user.party_barred = api_key.party_barred
        api_key_use(api_key=api_key, now=now)
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword
