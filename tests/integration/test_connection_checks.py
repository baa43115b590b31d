"""A persistent connection's check at the first query of a request (rems/config/postgresql/base.py, `is_usable`):
no round trip while the connection is in steady use, a ping once it has been idle, and a connection whose server
ended the session found unusable without waiting for anything."""

import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _last_statement_of(pid):
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True) as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


def _backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid() /* marker */")
        return cursor.fetchone()[0]


def test_a_connection_in_steady_use_is_checked_without_a_round_trip(settings):
    settings.REMS_DB_PING_IDLE = 60
    pid = _backend_pid()
    connection._pinged_at = time.monotonic()

    assert connection.is_usable()
    assert "marker" in _last_statement_of(pid)  # nothing was sent


def test_a_connection_idle_past_the_limit_is_pinged(settings):
    settings.REMS_DB_PING_IDLE = 5
    pid = _backend_pid()
    connection._pinged_at = time.monotonic() - 6

    assert connection.is_usable()
    assert _last_statement_of(pid) == "SELECT 1"
    assert time.monotonic() - connection._pinged_at < 1


def test_a_connection_whose_session_the_server_ended_is_not_usable_and_is_replaced(settings):
    settings.REMS_DB_PING_IDLE = 60
    pid = _backend_pid()
    connection._pinged_at = time.monotonic()
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):  # the backend leaves at once; its goodbye reaches the socket a moment later
            if not other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                break
            time.sleep(0.02)

    assert not connection.is_usable()
    # The next request's first query: Django checks the connection, closes it and opens another.
    assert connection.health_check_enabled
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert _backend_pid() != pid


def _synchronous_commit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_a_request_count_alone_commits_without_a_flush_and_within_a_transaction_as_durably_as_it():
    """The counter's own commit does not wait for the disk; counted inside a caller's transaction (a login's, which
    may write a log entry), it leaves that transaction's commit as durable as ever."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.throttling import count_requests

    pid = _backend_pid()
    now = timezone.now()
    assert count_requests(["alone"], now)[0] == {"alone": 1}
    statement = _last_statement_of(pid)
    assert "set_config('synchronous_commit', 'off', true)" in statement
    # What that statement does to its own transaction: the commit does not wait for the flush.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit') FROM "
                       "(SELECT set_config('synchronous_commit', 'off', true)) quick")
        assert cursor.fetchone()[0] == "off"
    assert _synchronous_commit() == "on"  # the setting ended with the count's own transaction
    with transaction.atomic():
        assert count_requests(["alone", "within"], now)[0] == {"alone": 2, "within": 1}
        assert "synchronous_commit" not in _last_statement_of(pid)
        assert _synchronous_commit() == "on"
