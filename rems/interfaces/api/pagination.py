from rest_framework import exceptions, pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages while rows are added: `results` and a `next` link. Views set `ordering`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-pk"

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"cursor": ["Invalid cursor; follow the `next` link."]}) from None
