"""Django's PostgreSQL backend, with every wait for the server bounded.

PostgreSQL's own timeouts (`statement_timeout`, `lock_timeout`, set in `rems/config/settings.py`) end a statement
that a working server is slow to finish, and TCP keepalives with `tcp_user_timeout` notice a server whose host or
network is gone. Neither helps when the server is there but does not answer (a frozen process or virtual machine,
a stalled disk): its kernel still acknowledges every packet, and a thread waiting for the reply would wait
forever. So here every wait for a reply (a statement, a fetch, a commit, a ping) has a deadline,
`REMS_DB_WAIT_TIMEOUT`; past it the connection is closed, since what was sent may or may not have been done, and
the operation raises `OperationalError`, which the API answers with 503 (docs/operations.md, "Degraded mode").
"""

import select
import threading
from contextlib import contextmanager
from time import monotonic

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base

_local = threading.local()
_DEFAULT = object()


def wait_limit():
    """How long this thread waits for a reply from the server, in seconds; 0 for no limit."""
    limit = getattr(_local, "limit", _DEFAULT)
    return settings.REMS_DB_WAIT_TIMEOUT if limit is _DEFAULT else limit


def wait_limit_set(seconds):
    """Set this thread's limit (`_DEFAULT` again with None); returns the one it replaces, to be restored."""
    previous = getattr(_local, "limit", None)
    if seconds is None:
        _local.__dict__.pop("limit", None)
    else:
        _local.limit = seconds
    return previous


@contextmanager
def waits_bounded(seconds):
    """Within this block this thread waits at most `seconds` for each reply of the server (0: no limit)."""
    previous = wait_limit_set(seconds)
    try:
        yield
    finally:
        wait_limit_set(previous)


class ServerDidNotAnswer(psycopg.OperationalError):
    """The server did not answer within the wait limit; the connection was closed."""


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose waits for the server end at the thread's wait limit."""

    def wait(self, gen, interval=0.1):
        limit = wait_limit()
        if limit:
            gen = self._within(gen, limit)
        return super().wait(gen, interval)

    def _within(self, gen, limit):
        # psycopg's wait loop sends Ready.NONE (falsy) to the generator each `interval` the socket stays silent.
        deadline = monotonic() + limit
        try:
            state = next(gen)
            while True:
                ready = yield state
                if not ready and monotonic() >= deadline:
                    gen.close()
                    self.close()
                    raise ServerDidNotAnswer(f"the database server did not answer within {limit:g} s")
                state = gen.send(ready)
        except StopIteration as done:
            return done.value


class _Psycopg:
    """The psycopg module as Django's backend uses it, but connecting with `BoundedConnection`."""

    connect = staticmethod(BoundedConnection.connect)

    def __getattr__(self, name):
        return getattr(psycopg, name)


class DatabaseWrapper(base.DatabaseWrapper):
    Database = _Psycopg()

    _pinged_at = None

    def is_usable(self):
        """Django asks at the first query of each request whether a persistent connection still works. Without a
        round trip when it was checked moments ago: a connection psycopg knows is closed or broken is not usable,
        nor one whose socket has something to read while idle (a server that ended the session, on a restart or
        a termination, sends its reason and closes). Past `REMS_DB_PING_IDLE` since its last check, it is pinged
        as well; a ping that is not answered at once means it is not usable. A new one is opened instead."""
        raw = self.connection
        if raw is None or raw.closed or raw.broken:
            return False
        try:
            poller = select.poll()
            poller.register(raw.fileno(), select.POLLIN | select.POLLPRI)
            if poller.poll(0):
                return False
        except (OSError, ValueError, psycopg.Error):
            return False
        now = monotonic()
        if self._pinged_at is not None and now - self._pinged_at < settings.REMS_DB_PING_IDLE:
            self._pinged_at = now
            return True
        limit = wait_limit()
        with waits_bounded(min(limit, settings.REMS_DB_PING_TIMEOUT) if limit else settings.REMS_DB_PING_TIMEOUT):
            usable = super().is_usable()
        self._pinged_at = monotonic() if usable else None
        return usable

    @contextmanager
    def _nodb_cursor(self):
        # Creating or dropping a database (the test suite's) waits for a checkpoint and for other sessions to leave:
        # it is exempt from the limits of the service's statements.
        with waits_bounded(0), super()._nodb_cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
            cursor.execute("SET lock_timeout = 0")
            yield cursor

    def close_if_unusable_or_obsolete(self):
        # Django pings a connection that saw an error at the start of the next request. With health checks on, the
        # first query of every request pings it anyway; leaving the ping to that query means a request that makes
        # none (`/healthz`) never waits for the server.
        if self.health_check_enabled:
            self.errors_occurred = False
        super().close_if_unusable_or_obsolete()
