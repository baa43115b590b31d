"""The health checks and the limits on database waits, in process (the served service with its servers frozen:
tests/integration/test_degraded.py)."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver

from rems.config import settings as config
from rems.config.postgresql.base import ServerDidNotAnswer, waits_bounded
from rems.interfaces.api import health

pytestmark = pytest.mark.django_db


def test_healthz_reads_no_session_and_no_database_even_with_a_session_cookie(api):
    api.client.cookies["sessionid"] = "a" * 32
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/healthz") == (200, {"status": "ok"})
    assert len(queries) == 0


def test_readyz_answers_within_its_limit_when_a_probe_never_returns(api, monkeypatch, settings):
    settings.REMS_READYZ_TIMEOUT = 0.5
    release = threading.Event()
    monkeypatch.setitem(health.PROBES, "broker", lambda: release.wait(10))
    try:
        started = time.monotonic()
        status, body = api.get("/readyz")
        assert time.monotonic() - started < 2
        assert status == 503 and body["checks"] == {"database": "ok",
                                                    "broker": "unavailable: no answer within 0.5 s"}
        # Asked again while the first probe still waits: no second probe is started.
        assert api.get("/readyz")[1]["checks"]["broker"] == "unavailable: no answer within 0.5 s"
        assert [t.name for t in threading.enumerate()].count("readyz-broker") == 1
    finally:
        release.set()


def test_a_wait_past_the_limit_closes_the_connection_and_raises(transactional_db):
    with waits_bounded(0.3):
        started = time.monotonic()
        with pytest.raises(Exception) as raised, connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(1.5)")  # the server gives up soon after
    assert time.monotonic() - started < 2
    assert isinstance(raised.value.__cause__ or raised.value, ServerDidNotAnswer)
    assert connection.connection.closed
    connection.close()
    with connection.cursor() as cursor:  # the next use connects again
        cursor.execute("SELECT 1")


def test_every_connection_starts_with_the_limits():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
                       "current_setting('idle_in_transaction_session_timeout')")
        assert cursor.fetchone() == ("5s", "3s", "1min")
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["connect_timeout"] == 3 and options["keepalives"] == 1 and options["tcp_user_timeout"] == 10_000


def test_management_commands_other_than_runserver_get_no_statement_limit():
    assert config.is_management_command(["manage.py", "verify_log"])
    assert config.is_management_command(["/venv/bin/django-admin", "migrate"])
    assert not config.is_management_command(["manage.py", "runserver", "127.0.0.1:8000"])
    assert not config.is_management_command(["/venv/bin/gunicorn", "rems.config.wsgi:application"])
    assert not config.is_management_command(["/venv/bin/celery", "-A", "rems.config", "worker"])


def _named(name):
    resolver = get_resolver()
    *namespaces, view = name.split(":")
    for namespace in namespaces:
        resolver = resolver.namespace_dict[namespace][1]
    return view in resolver.reverse_dict


def test_the_views_given_the_long_limit_exist():
    assert all(_named(name) for name in settings.REMS_DB_LONG_VIEWS)


def test_a_long_view_runs_under_the_long_statement_limit_and_the_next_request_does_not(api, world, monkeypatch):
    from rems.interfaces.api import audit_views

    seen, original = [], audit_views.log_verify

    def verify(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            seen.append(cursor.fetchone()[0])
        return original(**kwargs)

    monkeypatch.setattr(audit_views, "log_verify", verify)
    assert api.get("/api/v1/audit-events/verify", as_=world["auditor"])[0] == 200
    assert seen == ["10min"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        assert cursor.fetchone()[0] == "5s"
