"""Degraded mode: the served API (gunicorn, as deployed) against a PostgreSQL server and a Redis server of these
tests' own, each frozen in turn (SIGSTOP: the server accepts connections, its kernel acknowledges every packet,
and nothing ever answers). No request may wait without bound: `/healthz` answers at once, `/readyz` within 3 s,
a decision is a 503 within 10 s while the database is frozen and is made again as soon as it resumes; a frozen
broker delays no decision and no recorded test. Times are wall-clock, with room for a busy two-core machine
(docs/operations.md, "Degraded mode", gives the figures measured)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from .conftest import PrivateRedis, wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
POMALIDOMIDE_4MG = "59572-0504-21"

pytestmark = pytest.mark.skipif(
    PG_BIN is None or shutil.which("redis-server") is None, reason="needs PostgreSQL's binaries and redis-server"
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """A PostgreSQL server of these tests' own (as the `postgres` OS user when run as root), so that freezing it
    disturbs nobody else's tests."""

    def __init__(self):
        # Not under pytest's temporary directory, which only its owner may enter.
        self.directory, self.port = Path(tempfile.mkdtemp(prefix="rems-degraded-pg-")), _free_port()
        self.data = self.directory / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.process = None
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/rems"

    def start(self):
        if self.user:
            shutil.chown(self.directory, self.user)
        subprocess.run([PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], user=self.user, check=True, capture_output=True)
        self.process = subprocess.Popen(
            [PG_BIN / "postgres", "-D", self.data, "-p", str(self.port), "-k", self.directory,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off"],
            user=self.user, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: subprocess.run(
            [PG_BIN / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True).returncode == 0,
            timeout=30)
        subprocess.run([PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "rems"],
                       check=True, capture_output=True)

    def processes(self):
        """The postmaster and every backend (each backend is a session of its own, so a process group is not
        enough)."""
        server = psutil.Process(self.process.pid)
        return [server, *server.children(recursive=True)]

    def stop(self):
        if self.process and self.process.poll() is None:
            for process in self.processes():
                process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def frozen(processes):
    """SIGSTOP, then always SIGCONT, whatever the test does in between."""
    stopped = []
    try:
        for process in processes:
            process.send_signal(signal.SIGSTOP)
            stopped.append(process)
        time.sleep(0.3)  # let the signals land before the first request
        yield
    finally:
        for process in stopped:
            try:
                process.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass


class Served:
    """The API served by gunicorn, as the Dockerfile serves it (one process of 6 threads here), with its HTTP
    calls timed."""

    def __init__(self, database_url, broker_url, directory):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "rems.config.settings", "REMS_ENV": "test", "LOG_LEVEL": "ERROR",
            "DATABASE_URL": database_url, "REDIS_URL": broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(directory),
        }
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "rems.config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "6", "--timeout", "30"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: self.call("GET", "/healthz", timeout=2)[0] == 200, timeout=60)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def call(self, method, path, body=None, token=None, timeout=60):
        """(status, body, seconds); the status is 0 when nothing came back at all."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        except OSError:
            return 0, None, time.monotonic() - started
        seconds = time.monotonic() - started
        print(f"{method} {path}: {status} in {seconds:.2f} s")  # the figures, shown with -s or on a failure
        return status, (json.loads(raw) if "json" in kind and raw else raw.decode(errors="replace")), seconds


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A private PostgreSQL server, migrated and seeded with the demo data, a private Redis, and the API served
    against them. Module-wide: the migrations are the slow part."""
    directory = tmp_path_factory.mktemp("degraded")
    postgres, redis = PrivatePostgres(), PrivateRedis(directory)
    served = None
    try:
        postgres.start()
        redis.start()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "rems.config.settings", "REMS_ENV": "test",
               "DATABASE_URL": postgres.url, "REDIS_URL": redis.url, "LOG_LEVEL": "ERROR"}
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        seed = json.loads(subprocess.run([sys.executable, "manage.py", "seed_demo", "--json"], cwd=ROOT, env=env,
                                         check=True, capture_output=True, text=True).stdout)
        served = Served(postgres.url, redis.url, directory / "mail").start()
        yield {"postgres": postgres, "redis": redis, "api": served, "tokens": seed["tokens"]}
    finally:
        if served is not None:
            served.stop()
        redis.stop()
        postgres.stop()


_names = iter(range(1, 1_000_000))


def _enroll(api, token, risk_category):
    status, patient, _ = api.call("POST", "/api/v1/patients/", {
        "program": "pomalidomide", "first_name": "Ann", "last_name": f"Frost-{next(_names)}",
        "date_of_birth": "1970-03-04", "risk_category": risk_category, "agreement_signed_on": str(date.today()),
    }, token)
    assert status == 201, patient
    return patient["id"]


def _male_patient(api, token):
    """A patient whose prescription is approved at once: an adult male, counselled."""
    patient_id = _enroll(api, token, "MALE_ADULT")
    status, body, _ = api.call("POST", f"/api/v1/patients/{patient_id}/attestations/", {"kind": "male_counseling"},
                               token)
    assert status == 201, body
    return patient_id


def _prescribe(api, token, patient_id, timeout=60):
    return api.call("POST", "/api/v1/prescriptions/",
                    {"patient": patient_id, "ndc": POMALIDOMIDE_4MG, "quantity": 21, "days_supply": 28}, token,
                    timeout=timeout)


def _in_threads(*calls):
    """Run the calls at once; their results in order."""
    results = [None] * len(calls)

    def run(index, call):
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, results


def test_a_frozen_redis_delays_neither_a_decision_nor_a_recorded_test(servers):
    api, token = servers["api"], servers["tokens"]["prescriber"]
    patient_id = _male_patient(api, token)
    woman_id = _enroll(api, token, "FRP_ADULT")
    assert api.call("GET", "/readyz")[0] == 200

    with frozen([psutil.Process(servers["redis"].process.pid)]):
        status, body, seconds = api.call("GET", "/readyz")
        assert status == 503 and body["checks"] == {
            "database": "ok", "broker": "unavailable: no answer within 2 s"}, body
        assert seconds < 3.0, f"/readyz took {seconds:.2f} s"

        # The test is recorded, the enrollment suspended and the administrators' alert stored; publishing the
        # alert's task is left to a thread of its own, which is still waiting for Redis.
        collected_at = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
        status, body, seconds = api.call("POST", f"/api/v1/patients/{woman_id}/pregnancy-tests/", {
            "collected_at": collected_at, "result": "positive", "sensitivity_miu_ml": 25}, token)
        assert status == 201, body
        assert seconds < 5.0, f"the positive test took {seconds:.2f} s"

        # A second alert while the first is still waiting for the broker changes nothing either.
        second_id = _enroll(api, token, "FRP_ADULT")
        status, _, seconds = api.call("POST", f"/api/v1/patients/{second_id}/pregnancy-tests/", {
            "collected_at": collected_at, "result": "positive", "sensitivity_miu_ml": 25}, token)
        assert status == 201 and seconds < 5.0, f"the second positive test took {seconds:.2f} s"

        status, body, seconds = _prescribe(api, token, patient_id)
        assert status == 201, body
        assert seconds < 2.0, f"the decision took {seconds:.2f} s"

    assert wait_for(lambda: api.call("GET", "/readyz")[0] == 200, timeout=15)


def test_a_frozen_database_is_a_503_within_10_s_and_healthz_still_answers(servers):
    api, token = servers["api"], servers["tokens"]["prescriber"]
    waiting_ids = [_male_patient(api, token) for _ in range(3)]
    later_id = _male_patient(api, token)
    # Every thread of the served process has used, and kept, a connection before the server freezes.
    threads, _ = _in_threads(*[lambda: api.call("GET", "/api/v1/patients/", token=token) for _ in range(6)])
    for thread in threads:
        thread.join()

    with frozen(servers["postgres"].processes()):
        threads, decisions = _in_threads(*[
            (lambda patient_id=patient_id: _prescribe(api, token, patient_id, timeout=30))
            for patient_id in waiting_ids
        ])
        time.sleep(0.5)  # the decisions are waiting for the database now

        status, body, seconds = api.call("GET", "/healthz")
        assert (status, body) == (200, {"status": "ok"})
        assert seconds < 1.0, f"/healthz took {seconds:.2f} s while decisions waited"
        status, body, seconds = api.call("GET", "/readyz")
        assert status == 503 and body["checks"]["database"].startswith("unavailable"), body
        assert seconds < 3.0, f"/readyz took {seconds:.2f} s"

        for thread in threads:
            thread.join()
        for status, body, seconds in decisions:
            assert status == 503, body
            assert body["status"] == 503 and "nothing was approved" in body["detail"], body
            assert seconds < 10.0, f"a decision took {seconds:.2f} s to fail"
        status, body, seconds = _prescribe(api, token, later_id, timeout=30)  # on a connection found dead
        assert status == 503 and seconds < 10.0, (status, f"{seconds:.2f} s")

    # Resumed: decided again at once; nothing was approved for those refused while it was frozen.
    status, body, seconds = _prescribe(api, token, later_id)
    assert status == 201, body
    assert seconds < 5.0, f"the first decision after the database resumed took {seconds:.2f} s"
    for patient_id in waiting_ids:
        status, body, _ = _prescribe(api, token, patient_id)
        assert status == 201, body
