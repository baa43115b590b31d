"""A real Celery worker, started as its own process, against the real Redis and the test database."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from dispensing import dispenses, prescriptions
from dispensing.models import DispenseAuthorization
from rems.config.celery import app
from rems.interfaces.tasks.sweeps import expire_lapsed
from rems.program.models import Program
from tests.factories import PatientFactory

from .conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_expires_a_lapsed_rda_and_frees_its_authorization(world, worker_factory, queues):
    worker_factory().start()
    ours = world["ours"]
    program = Program.objects.get(slug="pomalidomide")
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    two_days_ago = timezone.now() - timedelta(days=2)
    _, _, prescription = prescriptions.prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28,
        now=two_days_ago,
    )
    decision, _, rda = dispenses.dispense_authorization_request(
        actor=ours.users["pharmacist"], pharmacy=ours.pharmacy, authorization_number=prescription.authorization_number,
        date_of_birth=patient.date_of_birth, ndc="59572-0504-21", quantity=21, days_supply=28, now=two_days_ago,
    )
    assert decision.approved and rda.expires_at < timezone.now()

    expire_lapsed.apply_async(queue=queues[0])

    assert wait_for(lambda: DispenseAuthorization.objects.get(pk=rda.pk).status == "expired")
    prescription.refresh_from_db()
    assert prescription.status == "issued"


def test_the_schedule_names_registered_tasks():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
