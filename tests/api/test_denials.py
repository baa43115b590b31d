"""One test per reason a decision is refused: 422, the failed check named, and nothing dispensed."""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from dispensing import prescriptions
from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import Certification, EnrollmentTransfer, Notification, Patient

from ..conftest import POMALIDOMIDE_3MG, make_party
from ..factories import PatientFactory, PrescriberFactory, UserFactory, token_for
from .flows import (
    attest_contraception,
    confirm_dispense,
    enroll,
    failed,
    prescribe,
    ready_frp_patient,
    record_test,
    request_rda,
)

pytestmark = pytest.mark.django_db


def assert_refused(status, decision, code):
    assert status == 422, decision
    assert decision["status"] == "denied"
    assert code in failed(decision), decision["checks"]
    if "rda_number" in decision:
        assert decision["rda_number"] is None
    else:
        assert decision["authorization_number"] is None
    message = next(c["message"] for c in decision["checks"] if c["code"] == code)
    assert message


def assert_nothing_prescribed(patient_id):
    assert not Prescription.objects.filter(patient_id=patient_id).exists()


def assert_nothing_dispensed(authorization_number):
    assert not DispenseAuthorization.objects.filter(
        prescription__authorization_number=authorization_number, status="dispensed"
    ).exists()
    assert Prescription.objects.get(authorization_number=authorization_number).status != "dispensed"


def approved_authorization(api, ours, risk_category="FNRP_ADULT"):
    if risk_category == "FRP_ADULT":
        patient_id = ready_frp_patient(api, ours.tokens["prescriber"])
    else:
        patient_id = enroll(api, ours.tokens["prescriber"], risk_category=risk_category)
    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    assert status == 201, decision
    return patient_id, decision["authorization_number"]


# --- Prescription authorization ------------------------------------------------------------------------
def test_uncertified_prescriber(api, program):
    prescriber = PrescriberFactory()  # never certified
    patient = PatientFactory(prescriber=prescriber, program=program, risk_category="MALE_ADULT")
    token = token_for(UserFactory(role=Role.PRESCRIBER, prescriber=prescriber), timezone.now())

    status, decision = prescribe(api, token, str(patient.pk))

    assert_refused(status, decision, "PRESCRIBER_CERTIFIED")
    assert_nothing_prescribed(patient.pk)


def test_uncertified_prescriber_cannot_enroll(api, program):
    prescriber = PrescriberFactory()
    token = token_for(UserFactory(role=Role.PRESCRIBER, prescriber=prescriber), timezone.now())

    status, body = api.post("/api/v1/patients/", {
        "program": "pomalidomide", "first_name": "A", "last_name": "B", "date_of_birth": "1980-01-01",
        "risk_category": "MALE_ADULT", "agreement_signed_on": str(timezone.now().date()),
    }, as_=token)

    assert status == 422 and "certified" in body["detail"]
    assert not Patient.objects.filter(prescriber=prescriber).exists()


def test_suspended_prescriber(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    certification = Certification.objects.get(prescriber=ours.prescriber)
    status, _ = api.post(f"/api/v1/certifications/{certification.pk}/suspend", {"reason": "audit finding"},
                         as_=world["admin"])
    assert status == 200

    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)

    assert_refused(status, decision, "PRESCRIBER_CERTIFIED")
    assert "suspended" in next(c["message"] for c in decision["checks"] if c["code"] == "PRESCRIBER_CERTIFIED")
    assert_nothing_prescribed(patient_id)


def test_prescriber_suspended_after_authorization_blocks_the_dispense(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)
    certification = Certification.objects.get(prescriber=ours.prescriber)
    api.post(f"/api/v1/certifications/{certification.pk}/suspend", {"reason": "audit"}, as_=world["admin"])

    status, decision = request_rda(api, ours.tokens["pharmacist"], number)

    assert_refused(status, decision, "PRESCRIBER_CERTIFIED")
    assert_nothing_dispensed(number)


def test_patient_not_enrolled(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    status, _ = api.post(f"/api/v1/patients/{patient_id}/suspend", {"reason": "agreement withdrawn"},
                         as_=world["admin"])
    assert status == 200

    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)

    assert_refused(status, decision, "PATIENT_ENROLLED")
    assert_nothing_prescribed(patient_id)


def test_frp_with_only_one_test(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(hours=2))
    attest_contraception(api, token, patient_id)

    status, decision = prescribe(api, token, patient_id)

    assert_refused(status, decision, "PREGNANCY_TEST_FIRST")
    assert failed(decision) == {"PREGNANCY_TEST_FIRST"}
    assert_nothing_prescribed(patient_id)


@pytest.mark.parametrize(
    ("first_ago", "second_ago", "code"),
    [
        (timedelta(days=15), timedelta(hours=2), "PREGNANCY_TEST_FIRST"),  # too early
        (timedelta(days=9), timedelta(hours=2), "PREGNANCY_TEST_FIRST"),  # too late
        (timedelta(days=12), timedelta(hours=25), "PREGNANCY_TEST_SECOND"),  # not within 24 hours
    ],
)
def test_frp_with_a_test_outside_the_windows(api, world, first_ago, second_ago, code):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, first_ago)
    record_test(api, token, patient_id, second_ago)
    attest_contraception(api, token, patient_id)

    status, decision = prescribe(api, token, patient_id)

    assert_refused(status, decision, code)
    assert_nothing_prescribed(patient_id)


def test_frp_test_not_sensitive_enough_does_not_count(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(days=12), sensitivity=100)
    record_test(api, token, patient_id, timedelta(hours=2))
    attest_contraception(api, token, patient_id)

    status, decision = prescribe(api, token, patient_id)

    assert_refused(status, decision, "PREGNANCY_TEST_FIRST")


def test_frp_positive_test_suspends_the_enrollment_at_once(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(days=12))
    attest_contraception(api, token, patient_id)

    record_test(api, token, patient_id, timedelta(hours=1), result="positive")

    patient = Patient.objects.get(pk=patient_id)
    assert patient.status == "suspended"
    assert patient.pregnancy_reports.count() == 1
    status, decision = prescribe(api, token, patient_id)
    assert_refused(status, decision, "PATIENT_ENROLLED")
    assert {"PATIENT_ENROLLED", "PREGNANCY_TEST_NEGATIVE"} <= failed(decision)
    assert_nothing_prescribed(patient_id)


def test_positive_test_after_the_authorization_blocks_the_dispense(api, world):
    ours = world["ours"]
    patient_id, number = approved_authorization(api, ours, "FRP_ADULT")
    record_test(api, ours.tokens["prescriber"], patient_id, timedelta(minutes=5), result="positive")

    status, decision = request_rda(api, ours.tokens["pharmacist"], number)

    assert_refused(status, decision, "PATIENT_ENROLLED")
    assert "PREGNANCY_TEST_NEGATIVE" in failed(decision)
    assert_nothing_dispensed(number)


def test_frp_without_attestation(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(days=12))
    record_test(api, token, patient_id, timedelta(hours=2))

    status, decision = prescribe(api, token, patient_id)

    assert_refused(status, decision, "CONTRACEPTION_ATTESTED")
    assert_nothing_prescribed(patient_id)


def test_frp_contraception_started_three_weeks_ago(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(days=12))
    record_test(api, token, patient_id, timedelta(hours=2))
    attest_contraception(api, token, patient_id, started_weeks_ago=3)

    status, decision = prescribe(api, token, patient_id)

    assert_refused(status, decision, "CONTRACEPTION_STARTED")
    assert failed(decision) == {"CONTRACEPTION_STARTED"}
    assert_nothing_prescribed(patient_id)


def test_frp_only_one_method(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(days=12))
    record_test(api, token, patient_id, timedelta(hours=2))
    attest_contraception(api, token, patient_id, methods=("MALE_CONDOM", "DIAPHRAGM"))

    status, decision = prescribe(api, token, patient_id)

    assert_refused(status, decision, "CONTRACEPTION_METHODS")


def test_more_than_28_days_of_supply(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token, risk_category="MALE_ADULT")
    api.post(f"/api/v1/patients/{patient_id}/attestations/", {"kind": "male_counseling"}, as_=token)

    status, decision = prescribe(api, token, patient_id, quantity=29, days_supply=29)

    assert_refused(status, decision, "DAYS_SUPPLY_LIMIT")
    assert_nothing_prescribed(patient_id)


def test_a_second_open_prescription(api, world):
    ours = world["ours"]
    patient_id, number = approved_authorization(api, ours)

    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)

    assert_refused(status, decision, "ONE_OPEN_PRESCRIPTION")
    assert number in next(c["message"] for c in decision["checks"] if c["code"] == "ONE_OPEN_PRESCRIPTION")
    assert Prescription.objects.filter(patient_id=patient_id).count() == 1


# --- Dispense authorization -----------------------------------------------------------------------------
def test_uncertified_pharmacy(api, world, program):
    _, number = approved_authorization(api, world["ours"])
    uncertified = make_party(program, timezone.now(), certify=False)

    status, decision = request_rda(api, uncertified.tokens["pharmacist"], number)

    assert_refused(status, decision, "PHARMACY_CERTIFIED")
    assert_nothing_dispensed(number)


def test_an_expired_authorization(api, world):
    ours = world["ours"]
    patient = PatientFactory(prescriber=ours.prescriber, program=Patient._meta.apps.get_model("rems", "Program")
                             .objects.get(slug="pomalidomide"), risk_category="FNRP_ADULT")
    # Issued 31 days ago: an FNRP authorization is valid 30 days.
    decision, _, prescription = prescriptions.prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28,
        now=timezone.now() - timedelta(days=31),
    )
    assert decision.approved

    status, body = request_rda(api, ours.tokens["pharmacist"], prescription.authorization_number)

    assert_refused(status, body, "AUTHORIZATION_NOT_EXPIRED")
    assert_nothing_dispensed(prescription.authorization_number)


def test_a_wrong_date_of_birth(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)

    status, decision = request_rda(api, ours.tokens["pharmacist"], number, dob="1991-05-01")

    assert_refused(status, decision, "PATIENT_DOB_MATCH")
    assert_nothing_dispensed(number)


def test_a_wrong_ndc(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)

    status, decision = request_rda(api, ours.tokens["pharmacist"], number, ndc=POMALIDOMIDE_3MG)

    assert_refused(status, decision, "PRODUCT_MATCH")
    assert_nothing_dispensed(number)


def test_a_larger_quantity(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)

    status, decision = request_rda(api, ours.tokens["pharmacist"], number, quantity=22)

    assert_refused(status, decision, "QUANTITY_MATCH")
    assert_nothing_dispensed(number)


def test_a_second_dispense_request_on_a_used_authorization(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)
    status, first = request_rda(api, ours.tokens["pharmacist"], number)
    assert status == 201

    status, second = request_rda(api, ours.tokens["pharmacist"], number)
    assert_refused(status, second, "AUTHORIZATION_UNUSED")

    confirm_dispense(api, ours.tokens["pharmacist"], first["rda_number"])
    status, third = request_rda(api, world["theirs"].tokens["pharmacist"], number)
    assert_refused(status, third, "AUTHORIZATION_UNUSED")
    assert DispenseAuthorization.objects.filter(prescription__authorization_number=number).count() == 1


def test_an_unknown_authorization_number(api, world):
    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

    status, decision = request_rda(api, world["ours"].tokens["pharmacist"], authorization_number_new(PRESCRIPTION_PREFIX))

    assert status == 422
    assert failed(decision) == {"AUTHORIZATION_FOUND"}


def test_dispense_needs_counseling_and_the_medication_guide(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)
    _, rda = request_rda(api, ours.tokens["pharmacist"], number)

    status, body = confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"], guide=False)

    assert status == 422 and "Medication Guide" in body["detail"]
    assert_nothing_dispensed(number)


def test_a_second_dispense_of_one_rda_is_refused(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)
    _, rda = request_rda(api, ours.tokens["pharmacist"], number)
    assert confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])[0] == 200

    status, body = confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])

    assert status == 409 and "dispensed" in body["detail"]


def test_a_risk_category_changed_after_the_authorization_blocks_the_dispense(api, world):
    ours = world["ours"]
    patient_id, number = approved_authorization(api, ours, "FNRP_ADULT")
    status, _ = api.post(f"/api/v1/patients/{patient_id}/risk-category",
                         {"risk_category": "FRP_ADULT", "agreement_signed_on": str(timezone.now().date()),
                          "reason": "menses resumed"},
                         as_=ours.tokens["prescriber"])
    assert status == 200

    status, decision = request_rda(api, ours.tokens["pharmacist"], number)

    assert_refused(status, decision, "RISK_CATEGORY_UNCHANGED")
    assert_nothing_dispensed(number)


def test_the_same_office_enrolling_a_person_twice_is_shown_its_own_record(api, world):
    body = {"program": "pomalidomide", "first_name": "Rita", "last_name": "Moreno", "date_of_birth": "1961-12-11",
            "risk_category": "MALE_ADULT", "agreement_signed_on": str(timezone.now().date())}
    status, patient = api.post("/api/v1/patients/", body, as_=world["ours"].tokens["prescriber"])
    assert status == 201

    status, problem = api.post("/api/v1/patients/", {**body, "first_name": "RITA"},
                               as_=world["ours"].tokens["prescriber"])

    assert status == 409 and "by your office" in problem["detail"] and patient["id"] in problem["detail"]
    assert Patient.objects.filter(last_name__iexact="moreno").count() == 1


def test_a_person_enrolled_by_another_office_becomes_a_transfer_that_reveals_nothing(api, world):
    body = {"program": "pomalidomide", "first_name": "Rita", "last_name": "Moreno", "date_of_birth": "1961-12-11",
            "risk_category": "MALE_ADULT", "agreement_signed_on": str(timezone.now().date())}
    status, patient = api.post("/api/v1/patients/", body, as_=world["ours"].tokens["prescriber"])
    assert status == 201

    again = {**body, "first_name": "RITA", "last_name": "moreno"}
    status, answer = api.post("/api/v1/patients/", again, as_=world["theirs"].tokens["prescriber"])

    assert status == 202 and answer["state"] == "pending"
    text = json.dumps(answer)
    for secret in (patient["id"], str(world["ours"].prescriber.pk), "enrolled", "MALE_ADULT", "active"):
        assert secret not in text
    assert set(answer) == {"id", "state", "detail"}
    assert Patient.objects.filter(last_name__iexact="moreno").count() == 1
    transfer = EnrollmentTransfer.objects.get(pk=answer["id"])
    assert transfer.patient_id == uuid.UUID(patient["id"]) and transfer.prescriber == world["theirs"].prescriber
    # The program administrators are told; the asking office cannot read the other enrollment.
    assert Notification.objects.filter(kind="enrollment_transfer", subject_id=answer["id"]).exists()
    assert api.get(f"/api/v1/patients/{patient['id']}/", as_=world["theirs"].tokens["prescriber"])[0] == 404


def test_an_approved_transfer_moves_the_enrollment_and_a_declined_one_does_not(api, world):
    from rems.program.patients import CannotDecideTransfer, transfer_decide

    body = {"program": "pomalidomide", "first_name": "Ada", "last_name": "Mover", "date_of_birth": "1970-01-02",
            "risk_category": "MALE_ADULT", "agreement_signed_on": str(timezone.now().date())}
    _, patient = api.post("/api/v1/patients/", body, as_=world["ours"].tokens["prescriber"])
    _, first = api.post("/api/v1/patients/", body, as_=world["theirs"].tokens["prescriber"])
    status, again = api.post("/api/v1/patients/", body, as_=world["theirs"].tokens["prescriber"])
    assert status == 202 and again["id"] == first["id"]  # one pending request, the administrators told once
    assert Notification.objects.filter(kind="enrollment_transfer").count() == \
        Notification.objects.filter(kind="enrollment_transfer", subject_id=first["id"]).count() >= 1
    admin, now = world["admin_user"], timezone.now()

    transfer_decide(actor=admin, transfer=EnrollmentTransfer.objects.get(pk=first["id"]), approve=False,
                    reason="the patient stays", now=now)
    assert Patient.objects.get(pk=patient["id"]).prescriber == world["ours"].prescriber
    _, second = api.post("/api/v1/patients/", body, as_=world["theirs"].tokens["prescriber"])
    assert second["id"] != first["id"]
    transfer_decide(actor=admin, transfer=EnrollmentTransfer.objects.get(pk=second["id"]), approve=True,
                    reason="the patient moved", now=now)
    assert Patient.objects.get(pk=patient["id"]).prescriber == world["theirs"].prescriber
    with pytest.raises(CannotDecideTransfer):
        transfer_decide(actor=admin, transfer=EnrollmentTransfer.objects.get(pk=second["id"]), approve=True,
                        reason="again", now=now)
    assert list(ComplianceLogEntry.objects.filter(action="patient.transfer_decide").order_by("seq")
                .values_list("outcome", flat=True)) == ["declined", "approved"]
    assert api.get(f"/api/v1/patients/{patient['id']}/", as_=world["theirs"].tokens["prescriber"])[0] == 200


def test_a_reversed_dispense_never_reopens_the_authorization(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)
    _, rda = request_rda(api, ours.tokens["pharmacist"], number)
    assert confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])[0] == 200
    status, _ = api.post(f"/api/v1/dispense-authorizations/{rda['rda_number']}/reverse",
                         {"reason": "claim reversed"}, as_=ours.tokens["pharmacist"])
    assert status == 200

    status, decision = request_rda(api, ours.tokens["pharmacist"], number)

    assert_refused(status, decision, "AUTHORIZATION_UNUSED")
    assert Prescription.objects.get(authorization_number=number).status == "cancelled"


def test_a_quantity_that_outlasts_the_days_stated_is_refused(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)

    status, decision = request_rda(api, ours.tokens["pharmacist"], number, quantity=21, days_supply=1)

    assert_refused(status, decision, "QUANTITY_LIMIT")
    assert_nothing_dispensed(number)


def test_a_wrong_birth_date_reveals_nothing_about_the_patient(api, world):
    ours = world["ours"]
    patient_id, number = approved_authorization(api, ours, "FRP_ADULT")
    record_test(api, ours.tokens["prescriber"], patient_id, timedelta(minutes=5), result="positive")

    status, decision = request_rda(api, ours.tokens["pharmacist"], number, dob="1991-05-01")

    assert_refused(status, decision, "PATIENT_DOB_MATCH")
    assert [c["code"] for c in decision["checks"]] == [
        "RULE_SET_IN_FORCE", "AUTHORIZATION_FOUND", "PHARMACY_CERTIFIED", "PATIENT_DOB_MATCH"]
    assert "positive" not in json.dumps(decision) and "suspended" not in json.dumps(decision)
