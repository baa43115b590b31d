import logging
import re
import uuid
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from rems.compliance_log.writer import request_id_var

from .postgresql.base import wait_limit_set

logger = logging.getLogger(__name__)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# The health checks: nothing on their way may read the session (a browser may send its cookie) or the database.
HEALTH_PATHS = ("/healthz", "/readyz")


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
        if request.path in HEALTH_PATHS:
            return self.get_response(request)
        zone = request.session.get("time_zone") if hasattr(request, "session") else None
        if zone:
            timezone.activate(ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class LongDatabaseWorkMiddleware:
    """The views of `REMS_DB_LONG_VIEWS` (the auditor's exports, the log's verification, the reports) read the
    whole log in one statement: for them alone the server's `statement_timeout` and the wait for each reply are
    raised to `REMS_DB_LONG_STATEMENT_TIMEOUT`, until the response, streamed or not, has been sent. Every other
    request keeps the limits every connection starts with (rems/config/settings.py)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.views = frozenset(settings.REMS_DB_LONG_VIEWS)
        self.seconds = settings.REMS_DB_LONG_STATEMENT_TIMEOUT

    def __call__(self, request):
        response = self.get_response(request)
        lifted = getattr(request, "long_database_work", None)
        if lifted is None:
            return response
        if response.streaming:
            # Restored when the server closes the response: after the last block, or when the client went away.
            response.streaming_content = _ClosedWith(response.streaming_content, lifted.restore)
        else:
            lifted.restore()
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is not None and match.view_name in self.views:
            request.long_database_work = _LongDatabaseWork(self.seconds)


class _ClosedWith:
    """A response's content that calls `on_close` when the response is closed."""

    def __init__(self, content, on_close):
        self.content, self.close = iter(content), on_close

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.content)


class _LongDatabaseWork:
    def __init__(self, seconds):
        self.previous_wait_limit = wait_limit_set(seconds)
        self.raw, self.restored = None, False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{round(seconds * 1000)}"])
            self.raw = connection.connection
        except (OperationalError, InterfaceError):
            pass  # the view meets the same error and answers it

    def restore(self):
        if self.restored:
            return
        self.restored = True
        wait_limit_set(self.previous_wait_limit)
        if self.raw is None or connection.connection is not self.raw:
            return  # a new connection starts with the usual limits
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
        except Exception:  # noqa: BLE001 - a connection that cannot be reset is not used again
            logger.warning("statement_timeout could not be reset; closing the connection")
            connection.close()

