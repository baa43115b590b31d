"""How an EHR authenticates to the CDS Hooks services (CDS Hooks 2.0): a JWT it signed (ES384 or RS384), whose
issuer the program administrator registered with its public key. The audience is the URL of the service called,
the expiry at most five minutes ahead, and each token id (`jti`) is accepted once. Anything else is refused."""

from datetime import UTC, datetime, timedelta

import jwt

from accounts.services import auth_failure_log
from rems.program.ehr import cds_client_for, token_id_use

MAX_LIFETIME = timedelta(minutes=5)
LEEWAY = timedelta(seconds=30)  # clocks differ a little between the EHR and the service


class TokenRefused(Exception):
    """The request's JWT is missing or not acceptable; the message says why, to the EHR."""


def cds_client_authenticated(request, now):
    """The registered EHR that signed the request's bearer JWT, or TokenRefused."""
    try:
        return _verified(request, now)
    except TokenRefused as exc:
        auth_failure_log(key="cds-hooks", reason=f"EHR token: {exc}"[:200], now=now)
        raise


def _verified(request, now):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("A JWT signed by the EHR is required: Authorization: Bearer <jwt>.")
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise TokenRefused("The bearer token is not a JWT.") from None
    client = cds_client_for(unverified.get("iss"))
    if client is None:
        raise TokenRefused("The JWT's issuer is not a registered EHR.")
    if header.get("alg") != client.algorithm:
        raise TokenRefused(f"This EHR signs with {client.algorithm}.")
    audience = request.build_absolute_uri(request.path)
    try:
        claims = jwt.decode(
            token, jwt.PyJWK(client.jwk, algorithm=client.algorithm).key, algorithms=[client.algorithm],
            audience=audience, issuer=client.issuer, leeway=LEEWAY,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("The JWT has expired.") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused(f"The JWT's audience must be the URL of the service called: {audience}.") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"The JWT is not acceptable: {exc}.") from None
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    if expires_at > now + MAX_LIFETIME + LEEWAY:
        raise TokenRefused("The JWT's expiry is at most five minutes ahead.")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise TokenRefused("The JWT's id (jti) is a text of 1 to 255 characters.")
    if not token_id_use(issuer=client.issuer, jti=jti, expires_at=expires_at + LEEWAY):
        raise TokenRefused("This JWT id (jti) was already used.")
    return client
