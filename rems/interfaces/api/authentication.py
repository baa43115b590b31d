from django.utils import timezone
from rest_framework import authentication, exceptions

from ..keys import KeyRefused, key_user


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
        try:
            return key_user(key, timezone.now())
        except KeyRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None

    def authenticate_header(self, request):
        return self.keyword
