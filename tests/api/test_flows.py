"""The whole program over HTTP: enrollment to dispense, for an FRP, an FNRP and a male patient."""

from datetime import timedelta

import pytest

from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import Patient

from .flows import (
    DOB,
    attest_male_counseling,
    confirm_dispense,
    enroll,
    failed,
    prescribe,
    ready_frp_patient,
    request_rda,
)

pytestmark = pytest.mark.django_db


def test_frp_patient_from_enrollment_to_dispense(api, world):
    # Given an FRP patient with two negative tests 12 days and 2 hours ago and contraception started 5 weeks ago
    ours = world["ours"]
    patient_id = ready_frp_patient(api, ours.tokens["prescriber"])

    # When the prescriber asks for an authorization for 21 capsules of 4 mg for 28 days
    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)

    # Then it is approved, with a number to write on the prescription, valid 7 days from the latest test
    assert status == 201, decision
    assert decision["status"] == "approved"
    assert decision["rule_set"] == "pomalidomide@2025-01-01"
    assert decision["risk_category"] == "FRP_ADULT"
    assert len(decision["authorization_number"]) == 12
    assert not failed(decision)
    codes = {c["code"] for c in decision["checks"]}
    assert {"PRESCRIBER_CERTIFIED", "PATIENT_ENROLLED", "CONTRACEPTION_METHODS", "CONTRACEPTION_STARTED",
            "PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_RECENT", "DAYS_SUPPLY_LIMIT"} <= codes
    prescription = Prescription.objects.get(authorization_number=decision["authorization_number"])
    latest_test = Patient.objects.get(pk=patient_id).pregnancy_tests.order_by("-collected_at").first()
    assert prescription.expires_at == latest_test.collected_at + timedelta(days=7)

    # When the pharmacy asks for a dispense authorization with the patient's date of birth
    status, rda = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"])
    assert status == 201, rda
    assert rda["status"] == "approved" and len(rda["rda_number"]) == 12
    assert {"PHARMACY_CERTIFIED", "PATIENT_DOB_MATCH", "AUTHORIZATION_UNUSED"} <= {c["code"] for c in rda["checks"]}

    # And confirms the dispense
    status, dispensed = confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])

    # Then the dispense is recorded once, and therapy has started
    assert status == 200, dispensed
    assert dispensed["status"] == "dispensed"
    prescription.refresh_from_db()
    assert prescription.status == "dispensed"
    assert Patient.objects.get(pk=patient_id).therapy_started_at is not None

    # And every decision and change of state is in the compliance log, with rule set and check codes
    actions = list(ComplianceLogEntry.objects.filter(patient_id=patient_id).order_by("seq").values_list("action", flat=True))
    assert actions == [
        Action.PATIENT_ENROLL, Action.PREGNANCY_TEST_RECORD, Action.PREGNANCY_TEST_RECORD, Action.ATTESTATION_RECORD,
        Action.PRESCRIPTION_AUTHORIZE, Action.DISPENSE_AUTHORIZATION_REQUEST, Action.DISPENSE_AUTHORIZATION_DISPENSE,
    ]
    entry = ComplianceLogEntry.objects.get(id=decision["decision_id"])
    assert entry.rule_set == "pomalidomide@2025-01-01"
    assert [c["code"] for c in entry.checks] == [c["code"] for c in decision["checks"]]
    assert "date_of_birth" not in str(entry.facts)


def test_male_patient_with_counseling_needs_no_pregnancy_test(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="MALE_ADULT")
    attest_male_counseling(api, ours.tokens["delegate"], patient_id)

    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)

    assert status == 201, decision
    codes = {c["code"] for c in decision["checks"]}
    assert "MALE_COUNSELING_ATTESTED" in codes
    assert not any(code.startswith("PREGNANCY_TEST") or code.startswith("CONTRACEPTION") for code in codes)
    status, rda = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"])
    assert status == 201, rda
    status, dispensed = confirm_dispense(api, ours.tokens["pharmacy_manager"], rda["rda_number"])
    assert status == 200 and dispensed["status"] == "dispensed"


def test_male_patient_without_counseling_is_refused(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="MALE_ADULT")

    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)

    assert status == 422
    assert failed(decision) == {"MALE_COUNSELING_ATTESTED"}


def test_fnrp_patient_needs_no_test_and_gets_30_days(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")

    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id, quantity=28)

    assert status == 201, decision
    prescription = Prescription.objects.get(authorization_number=decision["authorization_number"])
    assert prescription.expires_at - prescription.issued_at == timedelta(days=30)
    status, rda = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"], quantity=28)
    assert status == 201, rda
    status, _ = confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])
    assert status == 200
    assert DispenseAuthorization.objects.get(rda_number=rda["rda_number"]).status == "dispensed"


def test_reversed_rda_frees_the_authorization_for_another_request(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    _, rda = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"])

    status, reversed_rda = api.post(
        f"/api/v1/dispense-authorizations/{rda['rda_number']}/reverse", {"reason": "patient did not pick up"},
        as_=ours.tokens["pharmacist"],
    )

    assert status == 200 and reversed_rda["status"] == "reversed"
    status, again = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"])
    assert status == 201, again
    assert again["rda_number"] != rda["rda_number"]


def test_the_date_of_birth_is_compared_as_a_date(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT", date_of_birth=DOB)
    _, decision = prescribe(api, ours.tokens["prescriber"], patient_id)

    status, rda = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"], dob="1990-05-02")

    assert status == 422
    assert failed(rda) == {"PATIENT_DOB_MATCH"}
