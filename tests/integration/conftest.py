import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout=30, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


class Worker:
    """A real Celery worker process on queues of its own, against the test database."""

    def __init__(self, queues, mail_dir, broker_url, extra_env=None):
        self.queues, self.mail_dir, self.broker_url = queues, mail_dir, broker_url
        self.extra_env = extra_env or {}
        self.process = None

    def start(self, **extra_env):
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "rems.config.test_settings",
            "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": self.broker_url,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "REMS_QUEUE": self.queues[0],
            "REMS_ALERTS_QUEUE": self.queues[1],
            **self.extra_env,
            **extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "rems.config", "worker", "-Q", ",".join(self.queues), "--pool", "solo",
             "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return self

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def emails(self):
        """Every message the worker sent, each by its notification header. Django's file backend names a file by
        the second and the backend object's id, and appends to it: two messages can share a file."""
        if not self.mail_dir.exists():
            return []
        return [line for path in sorted(self.mail_dir.glob("*.log"))
                for line in path.read_text().splitlines() if line.startswith("X-REMS-Notification:")]


@pytest.fixture
def queues(settings):
    """Queue names of this test's own, used by the code under test and by its workers."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"rems-test-{suffix}", f"rems-test-alerts-{suffix}")
    settings.CELERY_TASK_DEFAULT_QUEUE, settings.REMS_ALERTS_QUEUE = names
    return names


@pytest.fixture
def worker_factory(queues, tmp_path):
    workers = []

    def make(broker_url=None, **extra_env):
        worker = Worker(queues, tmp_path / "mail", broker_url or settings.CELERY_BROKER_URL, extra_env)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A Redis server of the test's own, so that stopping it disturbs nothing else."""

    def __init__(self, directory):
        self.port, self.directory = _free_port(), directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: _answers(self.port), timeout=10)

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()
