"""A real Celery worker, started as its own process, against the real Redis and the test database."""

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from dispensing import services, tasks
from dispensing.models import DispenseAuthorization
from rems.celery import app
from rems.models import Program, RiskCategory
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker():
    """A worker on a queue of its own, so that nothing else on this Redis takes our tasks."""
    queue = f"rems-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rems.test_settings",
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.CELERY_BROKER_URL,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rems", "worker", "-Q", queue, "--pool", "solo", "--loglevel", "WARNING",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        yield queue
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_the_worker_expires_a_lapsed_rda_and_frees_its_authorization(world, worker):
    ours = world["ours"]
    program = Program.objects.get(slug="pomalidomide")
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category=RiskCategory.FNRP_ADULT)
    two_days_ago = timezone.now() - timedelta(days=2)
    _, _, prescription = services.prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28,
        now=two_days_ago,
    )
    decision, _, rda = services.dispense_authorization_request(
        actor=ours.users["pharmacist"], pharmacy=ours.pharmacy, authorization_number=prescription.authorization_number,
        date_of_birth=patient.date_of_birth, ndc="59572-0504-21", quantity=21, days_supply=28, now=two_days_ago,
    )
    assert decision.approved and rda.expires_at < timezone.now()

    tasks.expire_lapsed.apply_async(queue=worker)

    assert _wait_for(lambda: DispenseAuthorization.objects.get(pk=rda.pk).status == "expired")
    prescription.refresh_from_db()
    assert prescription.status == "issued"


def test_the_schedule_names_registered_tasks():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
