"""The service as in production, for the benchmarks: gunicorn on loopback, DEBUG off, persistent database
connections, acting as rems_app; throttling out of the way unless asked for (the benchmarks measure the decisions;
the surge keeps the production limits)."""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import serving_env  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def production_server(database_url, port, *, secret_key=None, throttled=False):
    """gunicorn serving the application on 127.0.0.1:`port`; yields its number of workers. `secret_key`: the
    SECRET_KEY to serve with (a session made beforehand with the same key is then valid); `throttled`: keep the
    production limits on dispense requests."""
    env = {
        **serving_env(), "DATABASE_URL": database_url, "REMS_ENV": "production",
        "SECRET_KEY": secret_key or secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false", "DB_CONN_MAX_AGE": "600",
        "DATABASE_ROLE": "rems_app", "LOG_LEVEL": "WARNING",
    }
    if not throttled:
        env.update(REMS_DISPENSE_RATE_PER_KEY="1000000", REMS_DISPENSE_RATE_PER_PHARMACY="1000000")
    # As the image is built (Dockerfile): the portal's pages name their static files by the collected manifest.
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env={**env, "DATABASE_ROLE": ""}, stdout=subprocess.DEVNULL)
    workers = 2 * (os.cpu_count() or 1) + 1
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "rems.config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers",
         str(workers), "--worker-class", "sync", "--log-level", "warning", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        yield workers
    finally:
        server.terminate()
        server.wait(timeout=30)


def _admin_and_bench_urls(name):
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rems")
    parts = urllib.parse.urlsplit(base)
    return parts._replace(path="/postgres").geturl(), parts._replace(path=f"/{name}").geturl()


def database_create(name):
    """A database of the benchmark's own, empty, on the server of DATABASE_URL; returns its URL."""
    import psycopg

    admin_url, url = _admin_and_bench_urls(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return url


def database_drop(name):
    import psycopg

    admin_url, _ = _admin_and_bench_urls(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
