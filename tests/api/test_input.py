"""Hostile and malformed input: a clear 4xx with a problem+json body, never a 500, never a partial write."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rems.compliance_log.models import ComplianceLogEntry
from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

from .flows import enroll, prescribe, request_rda

pytestmark = pytest.mark.django_db


def assert_problem(api, status, body, expected_status):
    assert status == expected_status, body
    assert api.last["Content-Type"] == "application/problem+json"
    assert set(body) >= {"type", "title", "status", "detail"} and body["status"] == expected_status


def _mistyped(number):
    index = 5
    replacement = "A" if number[index] != "A" else "B"
    return number[:index] + replacement + number[index + 1:]


@pytest.mark.parametrize("number", [
    "P123", "X" + authorization_number_new(PRESCRIPTION_PREFIX)[1:], "PUUUUUUUUUUU", 12345, None, "",
    "P" * 40, "P\x00" * 6,
])
def test_a_malformed_authorization_number_is_400_before_any_lookup(api, world, number):
    with CaptureQueriesContext(connection) as queries:
        status, body = request_rda(api, world["ours"].tokens["pharmacist"], number)

    assert_problem(api, status, body, 400)
    assert any(e["field"] == "authorization_number" for e in body["errors"])
    assert not any("dispensing_prescription" in q["sql"] for q in queries.captured_queries)
    assert not ComplianceLogEntry.objects.filter(action="dispense_authorization.request").exists()


def test_a_mistyped_character_is_caught_by_the_check_character(api, world):
    number = authorization_number_new(PRESCRIPTION_PREFIX)

    status, body = request_rda(api, world["ours"].tokens["pharmacist"], _mistyped(number))

    assert_problem(api, status, body, 400)
    assert "check character" in body["detail"]


def test_numbers_are_accepted_as_people_type_them(api, world):
    from .test_denials import approved_authorization

    _, number = approved_authorization(api, world["ours"])
    typed = f"{number[:5].lower()} {number[5:10]}-{number[10:]}".replace("0", "o").replace("1", "l")

    status, decision = request_rda(api, world["ours"].tokens["pharmacist"], typed)

    assert status == 201, decision


def test_a_malformed_rda_number_in_the_path_is_400(api, world):
    status, body = api.post("/api/v1/dispense-authorizations/R123/dispense",
                            {"counseling_confirmed": True, "medication_guide_provided": True},
                            as_=world["ours"].tokens["pharmacist"])
    assert_problem(api, status, body, 400)


HOSTILE_BODIES = [
    "not json", "[]", "[1, 2]", '"string"', "null", "123", "{", '{"patient": {"$gt": ""}}',
    json.dumps({"patient": "not-a-uuid", "ndc": "59572-0504-21", "quantity": 21, "days_supply": 28}),
    json.dumps({"patient": "00000000-0000-0000-0000-000000000000", "ndc": "59572-0504-21", "quantity": 10**30,
                "days_supply": 28}),
    json.dumps({"patient": "00000000-0000-0000-0000-000000000000", "ndc": "5957\x00", "quantity": 21,
                "days_supply": 28}),
    json.dumps({"patient": "00000000-0000-0000-0000-000000000000", "ndc": "59572-0504-21", "quantity": -1,
                "days_supply": 0}),
    json.dumps({"patient": "00000000-0000-0000-0000-000000000000", "ndc": "59572-0504-21", "quantity": "21",
                "days_supply": 28.5}),
    json.dumps({"patient": "00000000-0000-0000-0000-000000000000", "ndc": "59572-0504-21", "quantity": 21,
                "days_supply": 28, "refills": 5}),
]


@pytest.mark.parametrize("raw", HOSTILE_BODIES)
def test_hostile_prescription_bodies_are_refused_cleanly(api, world, raw):
    status, body = api.post("/api/v1/prescriptions/", raw=raw, as_=world["ours"].tokens["prescriber"])

    assert 400 <= status < 500, body
    assert api.last["Content-Type"] == "application/problem+json"
    assert not ComplianceLogEntry.objects.filter(action="prescription.authorize").exists()


@pytest.mark.parametrize("field, value", [
    ("date_of_birth", "1990-02-30"), ("date_of_birth", "3000-01-01"), ("risk_category", "FRP"),
    ("agreement_signed_on", "2999-01-01"), ("first_name", "x" * 500), ("first_name", "\x00"),
    ("irregular_cycles", "maybe"), ("program", "nope"), ("program", ["pomalidomide"]),
])
def test_hostile_enrollments_are_refused_without_a_write(api, world, field, value):
    body = {"program": "pomalidomide", "first_name": "A", "last_name": "B", "date_of_birth": "1990-01-01",
            "risk_category": "FRP_ADULT", "agreement_signed_on": "2026-01-01", field: value}

    status, answer = api.post("/api/v1/patients/", body, as_=world["ours"].tokens["prescriber"])

    assert status in (400, 422), answer
    assert api.last["Content-Type"] == "application/problem+json"
    assert not ComplianceLogEntry.objects.filter(action="patient.enroll").exists()


@pytest.mark.parametrize("body", [
    {"collected_at": "2026-01-01T10:00:00", "result": "negative", "sensitivity_miu_ml": 25},  # no offset
    {"collected_at": "2999-01-01T10:00:00Z", "result": "negative", "sensitivity_miu_ml": 25},  # future
    {"collected_at": "2026-01-01T10:00:00Z", "result": "unclear", "sensitivity_miu_ml": 25},
    {"collected_at": "2026-01-01T10:00:00Z", "result": "negative", "sensitivity_miu_ml": 0},
    {"collected_at": "yesterday", "result": "negative", "sensitivity_miu_ml": 25},
])
def test_invalid_pregnancy_tests_are_refused(api, world, body):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)

    status, answer = api.post(f"/api/v1/patients/{patient_id}/pregnancy-tests/", body, as_=token)

    assert status in (400, 422), answer
    assert api.last["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("body", [
    {"kind": "contraception", "methods": ["IUD", "MALE_CONDOM"], "abstinence": True, "started_on": "2026-01-01"},
    {"kind": "contraception", "methods": [], "abstinence": False, "started_on": "2026-01-01"},
    {"kind": "contraception", "methods": ["IUD", "IUD"], "abstinence": False, "started_on": "2026-01-01"},
    {"kind": "contraception", "methods": ["PRAYER"], "abstinence": False, "started_on": "2026-01-01"},
    {"kind": "contraception", "methods": ["IUD", "MALE_CONDOM"], "abstinence": False},
    {"kind": "male_counseling"},  # for an FRP patient
    {"kind": "other"},
])
def test_invalid_attestations_are_refused(api, world, body):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)

    status, answer = api.post(f"/api/v1/patients/{patient_id}/attestations/", body, as_=token)

    assert status in (400, 422), answer
    assert api.last["Content-Type"] == "application/problem+json"


def test_unknown_ids_in_paths_are_404_problems(api, world):
    token = world["ours"].tokens["prescriber"]
    for path in ("/api/v1/patients/not-a-uuid/", "/api/v1/patients/00000000-0000-0000-0000-000000000000/",
                 "/api/v1/nothing-here"):
        status, body = api.get(path, as_=token)
        assert_problem(api, status, body, 404)


def test_no_key_is_401_and_a_bad_key_is_401(api, world):
    status, body = api.get("/api/v1/patients/")
    assert_problem(api, status, body, 401)
    status, body = api.get("/api/v1/patients/", as_="rems_not-a-key")
    assert_problem(api, status, body, 401)


def test_a_role_that_may_not_act_gets_403(api, world):
    status, body = prescribe(api, world["auditor"], "00000000-0000-0000-0000-000000000000")
    assert_problem(api, status, body, 403)
    status, body = api.post("/api/v1/prescribers/", {"npi": "1234567893", "first_name": "A", "last_name": "B",
                                                     "email": "a@example.org"}, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, body, 403)


@pytest.mark.parametrize("raw", [
    '{"\\ud800": 1}',
    '{"program": "pomalidomide", "first_name": "A", "last_name": "B", "date_of_birth": "1990-01-01", '
    '"risk_category": "\\ud800", "agreement_signed_on": "2026-01-01"}',
    '{"program": "pomalidomide", "first_name": "\\udfff", "last_name": "B", "date_of_birth": "1990-01-01", '
    '"risk_category": "FRP_ADULT", "agreement_signed_on": "2026-01-01"}',
])
def test_lone_surrogates_are_refused_cleanly(api, world, raw):
    status, body = api.post("/api/v1/patients/", raw=raw, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, body, 400)


def test_a_lone_surrogate_in_an_authorization_number_is_400(api, world):
    status, body = api.post("/api/v1/dispense-authorizations/", raw=(
        '{"authorization_number": "P\\ud800ABCDEFGHJK", "patient_date_of_birth": "1990-01-01", '
        '"ndc": "59572-0504-21", "quantity": 1, "days_supply": 1}'), as_=world["ours"].tokens["pharmacist"])
    assert_problem(api, status, body, 400)


@pytest.mark.parametrize("path", [
    "/api/v1/patients/?status=%00", "/api/v1/patients/?risk_category=nope", "/api/v1/prescriptions/?status=%00",
    "/api/v1/patients/?cursor=garbage",
])
def test_bad_list_filters_are_400(api, world, path):
    status, body = api.get(path, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, body, 400)


def test_bad_rda_list_filter_is_400(api, world):
    status, body = api.get("/api/v1/dispense-authorizations/?status=%00", as_=world["ours"].tokens["pharmacist"])
    assert_problem(api, status, body, 400)


def test_a_post_without_the_trailing_slash_is_a_404_problem_not_a_redirect(api, world):
    status, body = api.post("/api/v1/prescriptions", {"patient": "x"}, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, body, 404)


@pytest.mark.parametrize("field, value", [("date_of_birth", "0001-01-01"), ("agreement_signed_on", "2999-01-01")])
def test_implausible_dates_are_invalid_input(api, world, field, value):
    body = {"program": "pomalidomide", "first_name": "A", "last_name": "B", "date_of_birth": "1990-01-01",
            "risk_category": "MALE_ADULT", "agreement_signed_on": "2026-01-01", field: value}
    status, problem = api.post("/api/v1/patients/", body, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, problem, 400)


def test_an_issued_key_is_never_stored_for_a_replay(api, world):
    from rems.program.models import IdempotencyRecord

    body = {"username": "new-pharmacist", "role": "pharmacist", "pharmacy": str(world["ours"].pharmacy.pk)}
    status, first = api.post("/api/v1/users/", body, as_=world["admin"], headers={"Idempotency-Key": "u-1"})
    assert status == 201 and first["token"].startswith("rems_")

    status, again = api.post("/api/v1/users/", body, as_=world["admin"], headers={"Idempotency-Key": "u-1"})

    assert status == 201 and again["id"] == first["id"]
    assert again["token"] != first["token"] and "shown once" in again["token"]
    assert first["token"] not in json.dumps(list(IdempotencyRecord.objects.values_list("response_body", flat=True)))
    assert api.get("/api/v1/programs/", as_=first["token"])[0] == 200
