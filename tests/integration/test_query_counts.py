"""A decision costs a fixed number of queries, whatever the patient's history: at most 12, the same for a patient
with 2 pregnancy tests and one with 500. (Counted, not timed.)"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispensing import dispenses, prescriptions
from rems.program import records
from rems.program.models import PregnancyTest, Program, RiskCategory
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
NDC = "59572-0504-21"


def _queries(captured):
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def _frp_patient(world, old_tests):
    office = world["ours"].users["prescriber"]
    now = timezone.now()
    patient = PatientFactory(prescriber=world["ours"].prescriber, program=Program.objects.get(slug="pomalidomide"),
                             risk_category=RiskCategory.FRP_ADULT)
    PregnancyTest.objects.bulk_create([
        PregnancyTest(patient=patient, collected_at=now - timedelta(days=30 + i), result="negative",
                      sensitivity_miu_ml=25, recorded_at=now, recorded_by=office)
        for i in range(old_tests)
    ])
    for ago in (timedelta(days=12), timedelta(hours=2)):
        records.pregnancy_test_record(actor=office, patient=patient, collected_at=now - ago, result="negative",
                                       sensitivity_miu_ml=25, now=now)
    records.attestation_record(actor=office, patient=patient, kind="contraception", methods=["IUD", "MALE_CONDOM"],
                                started_on=(now - timedelta(days=40)).date(), now=now)
    return patient


def _decide_both(world, patient):
    ours = world["ours"]
    now = timezone.now()
    with CaptureQueriesContext(connection) as prescription_queries:
        decision, _, prescription = prescriptions.prescription_authorize(
            actor=ours.users["prescriber"], patient=patient, ndc=NDC, quantity=21, days_supply=28, now=now)
    assert decision.approved, decision.failed_codes
    with CaptureQueriesContext(connection) as dispense_queries:
        decision, _, _ = dispenses.dispense_authorization_request(
            actor=ours.users["pharmacist"], pharmacy=ours.pharmacy,
            authorization_number=prescription.authorization_number, date_of_birth=patient.date_of_birth,
            ndc=NDC, quantity=21, days_supply=28, now=now)
    assert decision.approved, decision.failed_codes
    return _queries(prescription_queries), _queries(dispense_queries)


def test_decisions_cost_the_same_queries_for_a_short_and_a_long_history(world):
    short = _decide_both(world, _frp_patient(world, old_tests=0))
    long = _decide_both(world, _frp_patient(world, old_tests=498))

    assert PregnancyTest.objects.count() == 2 + 500
    for short_queries, long_queries in zip(short, long):
        assert len(short_queries) == len(long_queries) <= 12, "\n".join(long_queries)
