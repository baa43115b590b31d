"""The health checks and the limits on database waits, in process (the served service with its servers frozen:
tests/integration/test_degraded.py)."""

import os
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver

from rems.config import handlers
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


def test_every_connection_of_a_serving_process_starts_with_the_limits():
    db = connection.settings_dict
    script = ("import django; django.setup(); from django.db import connection; c = connection.cursor(); "
              "c.execute(\"SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
              "current_setting('idle_in_transaction_session_timeout')\"); print(*c.fetchone()); "
              "from django.conf import settings; o = settings.DATABASES['default']['OPTIONS']; "
              "print(o['connect_timeout'], o['keepalives'], o['tcp_user_timeout'], settings.REMS_DB_WAIT_TIMEOUT)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "rems.config.settings", "REMS_ENV": "test",
           "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    output = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True,
                            timeout=60).stdout.split("\n")
    assert output[:2] == ["5s 3s 1min", "3 1 10000 7"]


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


def _statement_timeout():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        return cursor.fetchone()[0]


def test_a_long_view_runs_under_the_long_statement_limit_and_restores_the_usual_one(api, world, monkeypatch,
                                                                                   settings):
    settings.REMS_DB_LONG_STATEMENT_TIMEOUT = 600
    from rems.interfaces.api import audit_views

    seen, original = [], audit_views.log_verify

    def verify(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            seen.append(cursor.fetchone()[0])
        return original(**kwargs)

    monkeypatch.setattr(audit_views, "log_verify", verify)
    before = _statement_timeout()
    assert api.get("/api/v1/audit-events/verify", as_=world["auditor"])[0] == 200
    assert seen == ["10min"]
    assert _statement_timeout() == before


@pytest.mark.parametrize("path, content_type", [("/patients/", "text/plain"),
                                                ("/api/v1/patients/", "application/problem+json")])
def test_a_database_that_did_not_answer_is_a_503_not_a_500(rf, path, content_type):
    try:
        raise OperationalError("the database server did not answer within 7 s")
    except OperationalError:
        response = handlers.handler500(rf.get(path))
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert response["Content-Type"].startswith(content_type)
    assert b"nothing was approved or recorded" in response.content


def test_a_streamed_export_keeps_the_long_limit_until_its_last_block(api, world, monkeypatch, settings):
    settings.REMS_DB_LONG_STATEMENT_TIMEOUT = 600
    from rems.interfaces.api import audit_views

    seen, original = [], audit_views.export_stream

    def export(queryset, kind):
        yield from original(queryset, kind)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            seen.append(cursor.fetchone()[0])

    monkeypatch.setattr(audit_views, "export_stream", export)
    before = _statement_timeout()
    response = api.client.get("/api/v1/audit-events/export.csv", HTTP_AUTHORIZATION=f"Token {world['auditor']}")
    assert response.status_code == 200
    b"".join(response.streaming_content)
    assert seen == ["10min"]
    assert _statement_timeout() == before
