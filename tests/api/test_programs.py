"""Four programs on one engine, over HTTP: each program's patients approved and dispensed under its own rules,
and refused, naming the check, where its rules differ from the others'."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from rems.program.models import Certification

from .flows import (
    attest_contraception,
    attest_counseling,
    attest_male_counseling,
    confirm_dispense,
    enroll,
    failed,
    ipledge_ready,
    prescribe,
    record_test,
    request_rda,
)

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
LENALIDOMIDE_10MG = "59572-0410-28"
THALIDOMIDE_100MG = "59572-0210-14"
ISOTRETINOIN_20MG = "00245-0571-01"


def dispensed(api, party, patient_id, *, ndc, quantity, days_supply):
    """Prescribe, request the RDA at the party's pharmacy and confirm the dispense; each step must succeed."""
    status, decision = prescribe(api, party.tokens["prescriber"], patient_id, ndc=ndc, quantity=quantity,
                                 days_supply=days_supply)
    assert status == 201 and decision["status"] == "approved", failed(decision) if "checks" in decision else decision
    status, rda = request_rda(api, party.tokens["pharmacist"], decision["authorization_number"], ndc=ndc,
                              quantity=quantity, days_supply=days_supply)
    assert status == 201 and rda["status"] == "approved", rda
    status, done = confirm_dispense(api, party.tokens["pharmacist"], rda["rda_number"])
    assert status == 200 and done["status"] == "dispensed", done
    return decision, rda


def refused_by(api, token, patient_id, **rx):
    """The failed checks of a denied iPLEDGE prescription, with their messages."""
    rx = {"ndc": ISOTRETINOIN_20MG, "quantity": 30, "days_supply": 30, **rx}
    status, decision = prescribe(api, token, patient_id, **rx)
    assert status == 422 and decision["status"] == "denied", decision
    return {c["code"]: c["message"] for c in decision["checks"] if not c["passed"]}


def test_a_lenalidomide_patient_who_can_get_pregnant_is_approved_and_dispensed(api, programs):
    ours = programs["ours"]
    token = ours.tokens["prescriber"]
    patient_id = enroll(api, token, program="lenalidomide")
    record_test(api, token, patient_id, timedelta(days=12))
    record_test(api, token, patient_id, timedelta(hours=2))
    attest_contraception(api, token, patient_id)

    decision, rda = dispensed(api, ours, patient_id, ndc=LENALIDOMIDE_10MG, quantity=28, days_supply=28)

    assert decision["rule_set"].startswith("lenalidomide@") and rda["rule_set"] == decision["rule_set"]


def test_a_thalidomide_male_patient_is_approved_and_dispensed(api, programs):
    ours = programs["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], program="thalidomide", risk_category="MALE_ADULT")
    attest_male_counseling(api, ours.tokens["prescriber"], patient_id)

    decision, _ = dispensed(api, ours, patient_id, ndc=THALIDOMIDE_100MG, quantity=28, days_supply=28)

    assert decision["rule_set"].startswith("thalidomide@")


def test_an_ipledge_patient_who_can_get_pregnant_is_approved_and_dispensed(api, programs):
    ours = programs["ours"]
    patient_id = ipledge_ready(api, ours.tokens["prescriber"])

    decision, _ = dispensed(api, ours, patient_id, ndc=ISOTRETINOIN_20MG, quantity=30, days_supply=30)

    assert decision["rule_set"] == "isotretinoin@2026-08-08"
    assert {"PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "CONTRACEPTION_STARTED", "COUNSELING_ATTESTED",
            "SURVEY_COMPLETED"} <= {c["code"] for c in decision["checks"]}


def test_an_ipledge_patient_who_cannot_get_pregnant_is_approved_and_dispensed(api, programs):
    ours = programs["ours"]
    token = ours.tokens["prescriber"]
    patient_id = enroll(api, token, program="isotretinoin", risk_category="CANNOT_GET_PREGNANT")
    attest_counseling(api, token, patient_id)

    decision, _ = dispensed(api, ours, patient_id, ndc=ISOTRETINOIN_20MG, quantity=30, days_supply=30)

    assert "COUNSELING_ATTESTED" in {c["code"] for c in decision["checks"]}
    assert not {c["code"] for c in decision["checks"]} & {"PREGNANCY_TEST_FIRST", "CONTRACEPTION_ATTESTED"}


def test_ipledge_tests_15_days_apart_are_refused_and_19_days_apart_are_not(api, programs):
    token = programs["ours"].tokens["prescriber"]
    too_close = ipledge_ready(api, token, first_ago=16 * DAY)
    refused = refused_by(api, token, too_close)
    # no test is old enough to be the first, so none can be the second either
    assert set(refused) == {"PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND"}
    assert "19" in refused["PREGNANCY_TEST_FIRST"]
    far_enough = ipledge_ready(api, token, first_ago=20 * DAY)
    status, decision = prescribe(api, token, far_enough, ndc=ISOTRETINOIN_20MG, quantity=30, days_supply=30)
    assert status == 201, failed(decision)


def test_an_ipledge_test_sensitive_only_to_50_miu_ml_does_not_count(api, programs):
    token = programs["ours"].tokens["prescriber"]
    patient_id = ipledge_ready(api, token, second_sensitivity=50)
    refused = refused_by(api, token, patient_id)
    # the test of yesterday counts neither as the second test nor as the recent one
    assert set(refused) == {"PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_RECENT"}
    assert "25 mIU/mL" in refused["PREGNANCY_TEST_SECOND"]


def test_ipledge_contraception_started_29_days_ago_is_refused_where_pomalidomide_accepts_it(api, programs):
    token = programs["ours"].tokens["prescriber"]
    patient_id = ipledge_ready(api, token, contraception_days=29)
    assert set(refused_by(api, token, patient_id)) == {"CONTRACEPTION_STARTED"}

    pomalidomide = enroll(api, token)
    record_test(api, token, pomalidomide, timedelta(days=12))
    record_test(api, token, pomalidomide, timedelta(hours=2))
    attest_contraception(api, token, pomalidomide, started_days_ago=29)
    status, decision = prescribe(api, token, pomalidomide)
    assert status == 201, failed(decision)


def test_31_days_of_isotretinoin_are_refused_and_30_are_not(api, programs):
    token = programs["ours"].tokens["prescriber"]
    patient_id = ipledge_ready(api, token)
    assert set(refused_by(api, token, patient_id, days_supply=31, quantity=31)) == {"DAYS_SUPPLY_LIMIT"}
    status, decision = prescribe(api, token, patient_id, ndc=ISOTRETINOIN_20MG, quantity=30, days_supply=30)
    assert status == 201, failed(decision)


def test_an_ipledge_latest_test_collected_8_days_ago_is_too_old(api, programs):
    token = programs["ours"].tokens["prescriber"]
    # the collection day is day 1 of the 7-day window: 6 days ago (day 7) counts, 7 days ago (day 8) does not
    in_window = ipledge_ready(api, token, first_ago=26 * DAY, second_ago=6 * DAY)
    status, decision = prescribe(api, token, in_window, ndc=ISOTRETINOIN_20MG, quantity=30, days_supply=30)
    assert status == 201, failed(decision)
    too_old = ipledge_ready(api, token, first_ago=28 * DAY, second_ago=8 * DAY)
    assert "PREGNANCY_TEST_RECENT" in refused_by(api, token, too_old)


def test_a_lenalidomide_rda_is_refused_at_a_pharmacy_certified_only_for_pomalidomide(api, programs):
    ours, theirs = programs["ours"], programs["theirs"]
    patient_id = enroll(api, ours.tokens["prescriber"], program="lenalidomide", risk_category="MALE_ADULT")
    attest_male_counseling(api, ours.tokens["prescriber"], patient_id)
    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id, ndc=LENALIDOMIDE_10MG, quantity=28,
                                 days_supply=28)
    assert status == 201

    status, rda = request_rda(api, theirs.tokens["pharmacist"], decision["authorization_number"],
                              ndc=LENALIDOMIDE_10MG, quantity=28, days_supply=28)

    assert status == 422 and failed(rda) == {"PHARMACY_CERTIFIED"}


@pytest.mark.parametrize("slug, category, date_of_birth, field", [
    ("pomalidomide", "CAN_GET_PREGNANT", "1990-05-01", "risk_category"),  # an iPLEDGE category
    ("isotretinoin", "FRP_ADULT", "1990-05-01", "risk_category"),  # a thalidomide-class category
    ("pomalidomide", "FRP_CHILD", "1990-05-01", "risk_category"),  # a child category for an adult
    ("lenalidomide", "MALE_ADULT", None, "risk_category"),  # an adult category for a child
])
def test_a_category_the_program_does_not_have_or_the_age_contradicts_is_a_400(api, programs, slug, category,
                                                                               date_of_birth, field):
    child = str((timezone.now() - timedelta(days=365 * 10)).date())
    body = {"program": slug, "first_name": "Ann", "last_name": "Lee", "date_of_birth": date_of_birth or child,
            "risk_category": category, "agreement_signed_on": str(timezone.now().date())}

    status, problem = api.post("/api/v1/patients/", body, as_=programs["ours"].tokens["prescriber"])

    assert status == 400 and field in json.dumps(problem), problem


def test_one_person_may_be_enrolled_in_several_programs_once_each(api, programs):
    token = programs["ours"].tokens["prescriber"]
    body = {"first_name": "Ann", "last_name": "Many", "date_of_birth": "1990-05-01",
            "agreement_signed_on": str(timezone.now().date())}
    assert api.post("/api/v1/patients/", {**body, "program": "pomalidomide", "risk_category": "FNRP_ADULT"},
                    as_=token)[0] == 201
    assert api.post("/api/v1/patients/", {**body, "program": "isotretinoin", "risk_category": "CANNOT_GET_PREGNANT"},
                    as_=token)[0] == 201
    assert api.post("/api/v1/patients/", {**body, "program": "isotretinoin", "risk_category": "CANNOT_GET_PREGNANT"},
                    as_=token)[0] == 409


def test_a_suspension_in_ipledge_does_not_bar_the_pharmacy_from_pomalidomide(api, programs):
    ours = programs["ours"]
    token = ours.tokens["prescriber"]
    pomalidomide = enroll(api, token, risk_category="MALE_ADULT")
    attest_male_counseling(api, token, pomalidomide)
    isotretinoin = enroll(api, token, program="isotretinoin", risk_category="CANNOT_GET_PREGNANT")
    attest_counseling(api, token, isotretinoin)
    _, pom_rx = prescribe(api, token, pomalidomide)
    _, iso_rx = prescribe(api, token, isotretinoin, ndc=ISOTRETINOIN_20MG, quantity=30, days_supply=30)
    _, iso_rda = request_rda(api, ours.tokens["pharmacist"], iso_rx["authorization_number"], ndc=ISOTRETINOIN_20MG,
                             quantity=30, days_supply=30)
    suspended = Certification.objects.get(pharmacy=ours.pharmacy, program__slug="isotretinoin")
    assert api.post(f"/api/v1/certifications/{suspended.pk}/suspend", {"reason": "inspection"},
                    as_=programs["admin"])[0] == 200

    # pomalidomide: requested, dispensed, listed as before
    status, rda = request_rda(api, ours.tokens["pharmacist"], pom_rx["authorization_number"])
    assert status == 201, rda
    assert confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])[0] == 200
    assert api.get("/api/v1/dispense-authorizations/", as_=ours.tokens["pharmacist"])[0] == 200
    # iPLEDGE: the RDA it holds cannot be dispensed, and the refusal names the program
    status, problem = confirm_dispense(api, ours.tokens["pharmacist"], iso_rda["rda_number"])
    assert status == 403 and "isotretinoin" in problem["detail"] and problem["type"].endswith("party_barred")


def test_a_prescriber_suspended_in_one_program_still_records_in_the_others(api, programs):
    ours = programs["ours"]
    token = ours.tokens["prescriber"]
    pomalidomide = enroll(api, token, risk_category="MALE_ADULT")
    isotretinoin = enroll(api, token, program="isotretinoin", risk_category="CANNOT_GET_PREGNANT")
    suspended = Certification.objects.get(prescriber=ours.prescriber, program__slug="pomalidomide")
    api.post(f"/api/v1/certifications/{suspended.pk}/suspend", {"reason": "audit"}, as_=programs["admin"])

    attest_counseling(api, token, isotretinoin)
    status, problem = api.post(f"/api/v1/patients/{pomalidomide}/attestations/", {"kind": "male_counseling"},
                               as_=token)
    assert status == 403 and "pomalidomide" in problem["detail"]
    status, decision = prescribe(api, token, pomalidomide)  # a decision: made, and denied by its gate
    assert status == 422 and "PRESCRIBER_CERTIFIED" in failed(decision)


def test_the_patients_time_zone_is_one_of_the_programs_and_counts_her_calendar_days(api, programs):
    token = programs["ours"].tokens["prescriber"]
    body = {"program": "isotretinoin", "first_name": "Tia", "last_name": "Zone", "date_of_birth": "1999-09-09",
            "risk_category": "CANNOT_GET_PREGNANT", "agreement_signed_on": str(timezone.now().date())}
    status, problem = api.post("/api/v1/patients/", {**body, "time_zone": "Europe/Paris"}, as_=token)
    assert status == 400 and problem["errors"][0]["field"] == "time_zone"
    status, patient = api.post("/api/v1/patients/", {**body, "time_zone": "Pacific/Honolulu"}, as_=token)
    assert status == 201 and patient["time_zone"] == "Pacific/Honolulu"
    status, patient = api.post("/api/v1/patients/", {**body, "last_name": "Nozone"}, as_=token)
    assert status == 201 and patient["time_zone"] == ""
