"""Errors as application/problem+json: {"type", "title", "status", "detail"} and, for invalid input,
"errors": [{"field", "code", "message"}]. No input produces a 500."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, DataError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from rems.core.errors import ActionRefused
from rems.core.identifiers import MalformedIdentifier
from rems.program.validation import InvalidValue

from ..refusals import refusal_status

PROBLEM_CONTENT_TYPE = "application/problem+json"
logger = logging.getLogger("rems.interfaces.api")

_TITLES = {
    400: "Invalid request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Cannot be processed",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(status_code, detail, *, errors=None, type_="about:blank", title=None):
    body = {"type": type_, "title": title or _TITLES.get(status_code, "Error"), "status": status_code, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return body


def _flatten(detail, prefix=""):
    """DRF's nested validation errors as a flat list of {field, code, message}."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            items += _flatten(value, f"{prefix}.{field}" if prefix and field else (field or prefix))
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                items += _flatten(value, f"{prefix}[{index}]")
            else:
                items += _flatten(value, prefix)
        return items
    return [{"field": prefix, "code": getattr(detail, "code", "invalid"), "message": str(detail)}]


class InvalidInput(exceptions.ValidationError):
    """Invalid input raised outside a serializer, with the field it concerns."""

    def __init__(self, field, message, code="invalid"):
        super().__init__({field: [exceptions.ErrorDetail(message, code=code)]})


def exception_handler(exc, context):
    if isinstance(exc, DataError):
        # The database refused a value that got past validation (a NUL byte, a number out of range).
        return Response(problem(400, "A value in this request is not valid."), status=400,
                        content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, DatabaseError):
        # Fail closed: the transaction was rolled back, nothing was approved or recorded.
        logger.warning("database error answered with 503: %s", type(exc).__name__)
        body = problem(503, "The service could not complete this request just now; nothing was approved or "
                            "recorded. Try again.")
        return Response(body, status=503, content_type=PROBLEM_CONTENT_TYPE, headers={"Retry-After": "1"})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, MalformedIdentifier):
        body = problem(400, str(exc), errors=[{"field": getattr(exc, "field", ""), "code": "malformed", "message": str(exc)}])
        return Response(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, ActionRefused):
        status = refusal_status(exc)
        errors = None
        if isinstance(exc, InvalidValue) and exc.field:
            errors = [{"field": exc.field, "code": exc.code, "message": exc.message}]
        body = problem(status, exc.message, type_=f"urn:rems:problem:{exc.code}", errors=errors)
        return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:5])
        body = problem(400, detail or "Invalid input.", errors=errors)
        return Response(body, status=400, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, exceptions.APIException):
        code = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if code == 401 and isinstance(exc, exceptions.NotAuthenticated):
            detail = "Authenticate with `Authorization: Token <key>`."
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response(problem(code, detail), status=code, content_type=PROBLEM_CONTENT_TYPE, headers=headers)
    return None
