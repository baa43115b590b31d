"""Cursor pages: `{"next", "previous", "results"}`, stable while rows are added.

A cursor is signed, and good only for the list that issued it: the position it carries goes into the list's
query, so a cursor that was made by hand, changed, or carried to another list is a 400 naming `cursor`, never
a value the database is asked to compare."""

from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import pagination
from rest_framework.utils.urls import replace_query_param

from .problems import InvalidInput

INVALID_CURSOR = "Invalid cursor; follow the `next` or `previous` link of the page before."


def _invalid():
    return InvalidInput("cursor", INVALID_CURSOR, code="invalid_cursor")


class CursorPagination(pagination.CursorPagination):
    """Views set `ordering`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-pk"

    def _salt(self, request):
        return f"rems.api.cursor:{request.path}:{','.join(self.ordering)}"

    def encode_cursor(self, cursor):
        value = signing.dumps([cursor.offset, cursor.reverse, cursor.position], salt=self._salt(self.request),
                              compress=False)
        return replace_query_param(self.base_url, self.cursor_query_param, value)

    def decode_cursor(self, request):
        value = request.query_params.get(self.cursor_query_param)
        if value is None:
            return None
        try:
            offset, reverse, position = signing.loads(value, salt=self._salt(request))
        except (signing.BadSignature, ValueError, TypeError):
            raise _invalid() from None
        if not (type(offset) is int and 0 <= offset <= self.offset_cutoff and type(reverse) is bool
                and (position is None or isinstance(position, str))):
            raise _invalid()
        return pagination.Cursor(offset=offset, reverse=reverse, position=position)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, DjangoValidationError):
            # A signed position the list's ordering field cannot take (the list's ordering changed since).
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise _invalid() from None

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "description": "the next page; null on the last page"},
                "previous": {**link, "description": "the page before; null on the first page"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.cursor_query_param, "in": "query", "required": False,
             "description": "Where the page starts: the value in the `next` or `previous` link of the page "
                            "before. Opaque; any other value is a 400.",
             "schema": {"type": "string"}},
            {"name": self.page_size_query_param, "in": "query", "required": False,
             "description": f"Results per page, {self.page_size} by default, at most {self.max_page_size}.",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
        ]
