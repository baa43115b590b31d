from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages while rows are added: `results` and a `next` link. Views set `ordering`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-pk"
