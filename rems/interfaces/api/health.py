"""Health checks for load balancers and orchestrators: `/healthz` (the process answers) and `/readyz` (the
database and the broker answer too).

`/healthz` touches nothing: no session, no database, no broker (see `HEALTH_PATHS` in rems/config/middleware.py
and the backend's connection checks in rems/config/postgresql/base.py), so it answers while every dependency
hangs. `/readyz` probes the database and the broker at once, each in a thread of its own, and answers within
`REMS_READYZ_TIMEOUT` whatever they do: a probe still waiting then counts as unavailable. A probe still waiting
from an earlier call is not started again, so a frozen dependency never piles threads up.
"""

import threading
import time

import kombu
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    return JsonResponse({"status": "ok"})


def _database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # the probe's thread ends here: its connection must not outlive it


def _broker():
    timeout = settings.REMS_BROKER_TIMEOUT
    with kombu.Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                          connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)
        # Connecting is not enough: a frozen Redis accepts connections but answers nothing.
        if conn.transport.driver_type == "redis":
            conn.default_channel.client.ping()


# What /readyz probes, each in a thread of its own: a function that returns when the dependency answered.
PROBES = {"database": _database, "broker": _broker}
_running = set()
_running_lock = threading.Lock()


class _Probe:
    def __init__(self, name):
        self.name, self.outcome = name, None
        with _running_lock:
            if name in _running:
                self.thread = None  # the previous probe is still waiting for an answer
                return
            _running.add(name)
        self.thread = threading.Thread(target=self._run, name=f"readyz-{name}", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            PROBES[self.name]()
            self.outcome = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            self.outcome = f"unavailable: {type(exc).__name__}"
        finally:
            with _running_lock:
                _running.discard(self.name)

    def result(self, deadline):
        if self.thread is not None:
            self.thread.join(max(0.0, deadline - time.monotonic()))
        return self.outcome or f"unavailable: no answer within {settings.REMS_READYZ_TIMEOUT:g} s"


def readyz(request):
    """Ready when the database answers and the broker answers; 503 otherwise, within `REMS_READYZ_TIMEOUT`."""
    deadline = time.monotonic() + settings.REMS_READYZ_TIMEOUT
    probes = [_Probe(name) for name in PROBES]
    checks = {probe.name: probe.result(deadline) for probe in probes}
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
