"""Statements of the hot paths (the API key lookup, the decisions, the log entry, the request counters),
written once as SQL and run as prepared statements: PostgreSQL parses and plans each one once per connection, and no
ORM builds SQL on every request.

A statement runs through Django's cursor wrapper, so it is counted, logged and timed as every other query (the
query-count tests see it), and its errors are Django's. Only the binding differs: parameters travel apart from the
text (server-side binding), which is what lets the server keep the statement prepared. Parameters are therefore
typed by the server from the statement; give a cast (`%(x)s::uuid`) where it could not tell.
"""

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper


class _PreparedCursor(psycopg.Cursor):
    """A server-side binding cursor that prepares every statement it runs (psycopg keeps the prepared statements of
    a connection, by text and parameter types, until it closes)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


# Django opens its connections with `prepare_threshold=None`, which psycopg reads as "never prepare", even when a
# statement asks to be. A threshold this high prepares only what asks (the statements here): Django's own cursors
# bind on the client side and are never prepared, whatever the threshold.
_ONLY_WHEN_ASKED = 1_000_000


class _DebugWrapper(CursorDebugWrapper):
    """Logs the statement's own text: psycopg keeps no text of a statement run by its prepared name, which is
    where Django's wrapper would read it from."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


def prepared_cursor():
    """A cursor on the default connection whose statements are prepared; use it as a context manager."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = connection.connection
        if raw.prepare_threshold is None:
            raw.prepare_threshold = _ONLY_WHEN_ASKED
        cursor = _PreparedCursor(raw)
    connection.validate_thread_sharing()
    return _DebugWrapper(cursor, connection) if connection.queries_logged else connection.make_cursor(cursor)


def placeholder(field):
    """The parameter of `field`'s value in a prepared INSERT, cast to the column's type: a character column's value
    is cast to text, so that the column itself refuses an overlong value (an explicit cast to `varchar(n)` would
    cut it short without a word)."""
    db_type = field.db_type(connection)
    return f"%({field.attname})s::{'text' if db_type.startswith('varchar') else db_type}"


def insert_params(obj, fields):
    """The parameters of a prepared INSERT of `obj` (written with `placeholder`): each field's value as its column
    stores it."""
    return {field.attname: field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields}


class CompiledOnce:
    """A statement the ORM builds once per process: `build(value)` returns the queryset for one value, and is called
    once, with `placeholder`; each run puts its own value where the placeholder went, so a rule written as ORM
    expressions stays in one place and is neither compiled nor planned again."""

    def __init__(self, build, placeholder):
        self._build, self._placeholder, self._compiled = build, placeholder, None

    def fetch_one(self, value):
        """The first row of the statement for `value` (prepared), or None."""
        if self._compiled is None:
            sql, params = self._build(self._placeholder).query.get_compiler(connection=connection).as_sql()
            self._compiled = (sql, list(params), list(params).index(self._placeholder))
        sql, params, index = self._compiled
        params = list(params)
        params[index] = value
        return fetch_one(sql, params)


def fetch_one(sql, params):
    """The first row of `sql` (prepared), or None."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
