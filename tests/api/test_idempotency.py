"""`Idempotency-Key`: a repeat returns the first answer and records nothing new; another body is refused."""

import pytest

from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import PregnancyTest

from .flows import enroll, prescribe, request_rda

pytestmark = pytest.mark.django_db


def test_a_repeated_prescription_returns_the_same_decision_and_number(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token, risk_category="FNRP_ADULT")
    first_status, first = prescribe(api, token, patient_id, headers={"Idempotency-Key": "rx-1"})
    entries = ComplianceLogEntry.objects.count()

    status, again = prescribe(api, token, patient_id, headers={"Idempotency-Key": "rx-1"})

    assert (status, again) == (first_status, first)
    assert api.last["Idempotent-Replayed"] == "true"
    assert first["authorization_number"]
    assert Prescription.objects.filter(patient_id=patient_id).count() == 1
    assert ComplianceLogEntry.objects.count() == entries


def test_a_repeated_denial_is_replayed_too(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token, risk_category="FNRP_ADULT")
    status, first = prescribe(api, token, patient_id, days_supply=40, quantity=21, headers={"Idempotency-Key": "k"})
    assert status == 422
    entries = ComplianceLogEntry.objects.count()

    status, again = prescribe(api, token, patient_id, days_supply=40, quantity=21, headers={"Idempotency-Key": "k"})

    assert status == 422 and again["decision_id"] == first["decision_id"]
    assert ComplianceLogEntry.objects.count() == entries


def test_the_same_key_with_another_body_is_refused(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token, risk_category="FNRP_ADULT")
    prescribe(api, token, patient_id, headers={"Idempotency-Key": "rx-2"})

    status, body = prescribe(api, token, patient_id, quantity=20, headers={"Idempotency-Key": "rx-2"})

    assert status == 422
    assert api.last["Content-Type"] == "application/problem+json"
    assert "Idempotency-Key" in body["detail"]
    assert Prescription.objects.filter(patient_id=patient_id).count() == 1


def test_a_repeated_dispense_request_returns_the_same_rda(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    number = decision["authorization_number"]
    status, first = request_rda(api, ours.tokens["pharmacist"], number, headers={"Idempotency-Key": "rda-1"})
    assert status == 201

    status, again = request_rda(api, ours.tokens["pharmacist"], number, headers={"Idempotency-Key": "rda-1"})

    assert status == 201 and again["rda_number"] == first["rda_number"]
    assert DispenseAuthorization.objects.filter(prescription__authorization_number=number).count() == 1


def test_keys_belong_to_their_caller(api, world):
    """Two callers may use the same key text without seeing each other's answers."""
    ours, theirs = world["ours"], world["theirs"]
    mine = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    other = enroll(api, theirs.tokens["prescriber"], risk_category="FNRP_ADULT")

    _, a = prescribe(api, ours.tokens["prescriber"], mine, headers={"Idempotency-Key": "same"})
    _, b = prescribe(api, theirs.tokens["prescriber"], other, headers={"Idempotency-Key": "same"})

    assert a["authorization_number"] != b["authorization_number"]


def test_a_repeated_record_is_created_once(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    body = {"collected_at": "2026-01-01T10:00:00Z", "result": "negative", "sensitivity_miu_ml": 25}
    path = f"/api/v1/patients/{patient_id}/pregnancy-tests/"

    first = api.post(path, body, as_=token, headers={"Idempotency-Key": "t-1"})
    second = api.post(path, body, as_=token, headers={"Idempotency-Key": "t-1"})

    assert first == second and first[0] == 201
    assert PregnancyTest.objects.filter(patient_id=patient_id).count() == 1


def test_an_invalid_key_is_400(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token, risk_category="FNRP_ADULT")

    status, body = prescribe(api, token, patient_id, headers={"Idempotency-Key": "x" * 300})

    assert status == 400 and body["errors"][0]["field"] == "Idempotency-Key"
