"""Checkpoints in an S3-compatible bucket: written, found again newest first and compared with the log, over
HTTP against a local S3-compatible server in a process of its own (moto's server)."""

import shutil
import socket
import subprocess
import time

import boto3
import pytest
from django.db import connection
from django.utils import timezone

from rems.compliance_log import checkpoints
from rems.compliance_log.actions import Action
from rems.compliance_log.verify import log_verify
from rems.compliance_log.writer import log_entry_write

pytestmark = pytest.mark.django_db


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = _free_port()
    process = subprocess.Popen([shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the S3-compatible server did not start")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def bucket(s3_server, settings, monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    name = f"checkpoints-{time.monotonic_ns()}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    settings.LOG_CHECKPOINT_S3_BUCKET, settings.LOG_CHECKPOINT_S3_ENDPOINT = name, s3_server
    settings.LOG_CHECKPOINT_S3_PREFIX = "rems/"
    return boto3.client("s3", endpoint_url=s3_server), name


def _write(n):
    for i in range(n):
        log_entry_write(actor=None, action=Action.PATIENT_SURVEY_RECORD, outcome="recorded", object_type="test",
                        object_id=i, now=timezone.now())


def test_checkpoints_go_to_the_bucket_and_the_newest_is_compared(bucket):
    client, name = bucket
    _write(3)
    first, _ = checkpoints.checkpoint_write(now=timezone.now())
    _write(2)
    second, _ = checkpoints.checkpoint_write(now=timezone.now())

    keys = [item["Key"] for item in client.list_objects_v2(Bucket=name)["Contents"]]
    assert sorted(keys) == sorted(f"rems/{c.id[0:4]}/{c.id[4:6]}/{c.id[6:8]}/{c.id}.json" for c in (first, second))
    assert checkpoints.newest_checkpoint().id == second.id

    result = log_verify()
    assert result.ok and result.checkpoint == second.id


def test_a_log_wiped_after_a_checkpoint_in_the_bucket_is_caught(bucket):
    _write(3)
    checkpoint, _ = checkpoints.checkpoint_write(now=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE rems_compliancelogentry DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE rems_logchainhead DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM rems_compliancelogentry")
        cursor.execute("DELETE FROM rems_logchainhead")
        cursor.execute("ALTER TABLE rems_compliancelogentry ENABLE TRIGGER USER")
        cursor.execute("ALTER TABLE rems_logchainhead ENABLE TRIGGER USER")

    result = log_verify()

    assert not result.ok and any(checkpoint.id in c for c in result.contradictions)


def test_an_unreachable_bucket_fails_the_verification(bucket, settings):
    settings.LOG_CHECKPOINT_S3_ENDPOINT = f"http://127.0.0.1:{_free_port()}"
    _write(1)

    result = log_verify()

    assert not result.ok and "checkpoint store failed" in result.checkpoint_error
