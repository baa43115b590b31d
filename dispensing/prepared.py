"""Statements of the hot paths (the API key lookup, the two decisions), written once as SQL and run as prepared
statements: PostgreSQL parses and plans each one once per connection, and no ORM builds SQL on every request.

A statement runs through Django's cursor wrapper, so it is counted, logged and timed as every other query (the
query-count tests see it), and its errors are Django's. Only the binding differs: parameters travel apart from the
text (server-side binding), which is what lets the server keep the statement prepared. Parameters are therefore
typed by the server from the statement; give a cast (`%(x)s::uuid`) where it could not tell.
"""

import psycopg
from django.db import connection


class _PreparedCursor(psycopg.Cursor):
    """A server-side binding cursor that prepares every statement it runs (psycopg keeps the prepared statements of
    a connection, by text and parameter types, until it closes)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor():
    """A cursor on the default connection whose statements are prepared; use it as a context manager."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = _PreparedCursor(connection.connection)
    connection.validate_thread_sharing()
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


def fetch_one(sql, params):
    """The first row of `sql` (prepared), or None."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
