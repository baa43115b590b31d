"""The OpenAPI schema, made to be trusted by generated clients: what every operation answers, errors included.

Central rules, so that a new view is described right without a decoration of its own:
- a GET whose answer is a list is a cursor page: `{"next", "previous", "results"}`, with `cursor` and `page_size`;
- every error an operation can answer is listed with its problem+json body (`problems.py`): 401 and 403 for every
  operation (a key; a role, or a suspended party), 404 where an object is looked up in the caller's scope, 400
  where there is input to refuse, 409 and 422 for the refusals of a POST (`rems.interfaces.refusals`), 413 and 415
  for a body, 429 where a request limit applies, 406 and 503 everywhere (an `Accept` header that allows no answer;
  a database failure, answered failing closed);
- a POST that honours `Idempotency-Key` documents the header;
- `x-roles` lists the roles that may call the operation (`docs/access.md`).
"""

import functools
import inspect
import textwrap

import uritemplate
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter
from rest_framework.permissions import IsAuthenticated

from .access import RolePermission
from .pagination import CursorPagination
from .problems import PROBLEM_CONTENT_TYPE


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "rems.interfaces.api.authentication.ApiKeyAuthentication"
    name = "TokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <key>`"}


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An error (RFC 9457). `errors` names each invalid field of a 400.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "`about:blank`, or `urn:rems:problem:<code>` for a refusal"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {"field": {"type": "string"}, "code": {"type": "string"},
                               "message": {"type": "string"}},
            },
        },
    },
}

ERRORS = {
    "400": "Invalid input: a malformed body, parameter or number; `errors` names the fields.",
    "401": "No key, or an unknown, expired or revoked key, or a deactivated user.",
    "403": "The caller's role may not do this, or the party it acts for is suspended or revoked.",
    "404": "No such object among those the caller may see (the same answer as for one that does not exist).",
    "406": "The `Accept` header allows no answer this operation gives.",
    "409": "The record's state does not allow it: a duplicate, or a change from the wrong status.",
    "413": "The body is too large.",
    "415": "The body is not `application/json`.",
    "422": "A rule of the program does not allow it now, or the `Idempotency-Key` was used for another request.",
    "429": "Too many requests: the request limit of the key or the pharmacy (`Retry-After` says when to retry).",
    "503": "The service could not complete the request just now; nothing was approved or recorded. Retry.",
}

HEADERS = {
    "401": {"WWW-Authenticate": "`Token`"},
    "429": {"Retry-After": "seconds until the limit's window ends"},
    "503": {"Retry-After": "seconds to wait before retrying"},
}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False, pattern=r"^[!-~]{1,255}$",
    description="1 to 255 visible ASCII characters. A repeat with the same key and body answers the first "
                "answer again and records nothing new; the same key with another body is a 422.",
)


@functools.lru_cache(maxsize=None)
def _source(function):
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return ""


class ApiSchema(AutoSchema):
    def _handler_source(self):
        return _source(getattr(self.view, self.method.lower(), None))

    # --- Lists: the cursor page of `ApiView.paginated` -------------------------------------------------------
    def _get_paginator(self):
        # Every list the API answers to a GET is a page of CursorPagination (ApiView.paginated); a view whose
        # answer is no such page says so with a response that is not a list.
        if self.method == "GET":
            return CursorPagination()
        return None

    # --- Idempotency-Key -----------------------------------------------------------------------------------
    def _idempotent(self):
        return self.method == "POST" and "idempotent(" in self._handler_source()

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._idempotent():
            parameters.append(IDEMPOTENCY_KEY)
        return parameters

    # --- Who may call it -----------------------------------------------------------------------------------
    def get_extensions(self):
        extensions = dict(super().get_extensions())
        roles = getattr(self.view, "roles", None)
        if roles is not None:
            # RolePermission (access.py): every other role is refused with a 403 before anything is read.
            extensions["x-roles"] = sorted(str(role) for role in roles.get(self.method, ()))
        return extensions

    # --- Errors --------------------------------------------------------------------------------------------
    def _error_statuses(self):
        view = self.view
        permissions = tuple(getattr(view, "permission_classes", ()))
        has_body = self.method in ("POST", "PUT", "PATCH") and self._get_request_body() is not None
        parameters = self._get_parameters()
        refusable_parameter = any(
            p["in"] in ("query", "header")
            or (p["in"] == "path" and p["schema"].get("type") != "integer" and p["schema"].get("format") != "uuid")
            for p in parameters
        )
        statuses = set()
        if IsAuthenticated in permissions:
            statuses.add("401")
        if RolePermission in permissions:
            statuses.add("403")
        if uritemplate.variables(self.path) or "in_scope(" in self._handler_source():
            statuses.add("404")
        if has_body or refusable_parameter:
            statuses.add("400")
        if has_body:
            statuses |= {"413", "415"}
        if self.method == "POST":
            statuses |= {"409", "422"}
        if self.method == "POST" and getattr(view, "throttle_classes", None):
            statuses.add("429")  # the request limits count the requests that ask for a decision
        statuses |= {"406", "503"}  # content negotiation; a database failure, answered failing closed
        return statuses

    def _problem_ref(self):
        component = ResolvedComponent(name="Problem", type=ResolvedComponent.SCHEMA, object="Problem",
                                      schema=PROBLEM_SCHEMA)
        self.registry.register_on_missing(component)
        return component.ref

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        problem = {"schema": self._problem_ref()}
        for status in sorted(self._error_statuses()):
            response = responses.setdefault(status, {"description": ERRORS[status]})
            if "content" in response:
                response["description"] = f"{response.get('description') or ''} {ERRORS[status]}".strip()
            response.setdefault("content", {}).setdefault(PROBLEM_CONTENT_TYPE, problem)
            for name, description in HEADERS.get(status, {}).items():
                response.setdefault("headers", {})[name] = {"schema": {"type": "string"},
                                                            "description": description}
        return responses
