import re
import uuid
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from rems.compliance_log.writer import request_id_var

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's `X-Request-Id` if it is safe to log), recorded in the compliance
    log and returned in the response. In development mode every response says so."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.development = settings.REMS_ENV == "development"

    def __call__(self, request):
        given = request.headers.get("X-Request-Id", "")
        request_id = given if _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
        if self.development:
            response["X-REMS-Environment"] = "development"
        return response


class ContentSecurityPolicyMiddleware:
    """Sends `CONTENT_SECURITY_POLICY` with every response but for the exempt paths: no inline script or style can
    run in the portal or the admin site, whatever text an attacker manages to get into a page."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY
        self.exempt = tuple(settings.CONTENT_SECURITY_POLICY_EXEMPT)

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(self.exempt):
            response.setdefault("Content-Security-Policy", self.policy)
        return response


class UserTimeZoneMiddleware:
    """Times typed into and shown by the portal are in the zone the user's browser reported at sign-in (UTC
    otherwise). Activated for this request only: a thread serving the next request starts from UTC again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = request.session.get("time_zone") if hasattr(request, "session") else None
        if zone:
            timezone.activate(ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
