"""The steps of the program, over HTTP, as the prescriber's office and the pharmacy take them."""

import itertools
from datetime import date, timedelta

from django.utils import timezone

from tests.conftest import POMALIDOMIDE_4MG

DOB = "1990-05-01"
_names = itertools.count(1)


def iso(moment):
    return moment.isoformat()


def enroll(api, token, *, risk_category="FRP_ADULT", date_of_birth=DOB, **extra):
    body = {
        "program": "pomalidomide", "first_name": "Ann", "last_name": f"Lee-{next(_names)}", "date_of_birth": date_of_birth,
        "risk_category": risk_category, "agreement_signed_on": str(timezone.now().date()), **extra,
    }
    status, patient = api.post("/api/v1/patients/", body, as_=token)
    assert status == 201, patient
    return patient["id"]


def record_test(api, token, patient_id, ago, *, result="negative", sensitivity=25, setting=None):
    body = {"collected_at": iso(timezone.now() - ago), "result": result, "sensitivity_miu_ml": sensitivity}
    if setting is not None:
        body["setting"] = setting
    status, body = api.post(f"/api/v1/patients/{patient_id}/pregnancy-tests/", body, as_=token)
    assert status == 201, body
    return body


def attest_contraception(api, token, patient_id, *, started_weeks_ago=5, methods=("IUD", "MALE_CONDOM"),
                         started_days_ago=None):
    started_on = date.today() - (timedelta(days=started_days_ago) if started_days_ago is not None
                                 else timedelta(weeks=started_weeks_ago))
    status, body = api.post(
        f"/api/v1/patients/{patient_id}/attestations/",
        {"kind": "contraception", "methods": list(methods), "abstinence": False, "started_on": str(started_on)},
        as_=token,
    )
    assert status == 201, body
    return body


def attest_male_counseling(api, token, patient_id):
    status, body = api.post(f"/api/v1/patients/{patient_id}/attestations/", {"kind": "male_counseling"}, as_=token)
    assert status == 201, body
    return body


def attest_counseling(api, token, patient_id):
    status, body = api.post(f"/api/v1/patients/{patient_id}/attestations/", {"kind": "counseling"}, as_=token)
    assert status == 201, body
    return body


def record_survey(api, token, patient_id, ago=timedelta(hours=1)):
    status, body = api.post(f"/api/v1/patients/{patient_id}/surveys/",
                            {"completed_at": iso(timezone.now() - ago)}, as_=token)
    assert status == 201, body
    return body


def ready_frp_patient(api, token):
    """An FRP patient with two negative tests (12 days and 2 hours ago) and contraception started 5 weeks ago."""
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(days=12))
    record_test(api, token, patient_id, timedelta(hours=2))
    attest_contraception(api, token, patient_id)
    return patient_id


def prescribe(api, token, patient_id, *, ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28, headers=None):
    return api.post(
        "/api/v1/prescriptions/",
        {"patient": patient_id, "ndc": ndc, "quantity": quantity, "days_supply": days_supply},
        as_=token, headers=headers,
    )


def request_rda(api, token, authorization_number, *, dob=DOB, ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28,
                headers=None):
    return api.post(
        "/api/v1/dispense-authorizations/",
        {"authorization_number": authorization_number, "patient_date_of_birth": dob, "ndc": ndc,
         "quantity": quantity, "days_supply": days_supply},
        as_=token, headers=headers,
    )


def confirm_dispense(api, token, rda_number, *, counseling=True, guide=True):
    return api.post(
        f"/api/v1/dispense-authorizations/{rda_number}/dispense",
        {"counseling_confirmed": counseling, "medication_guide_provided": guide}, as_=token,
    )


def failed(decision):
    return {c["code"] for c in decision["checks"] if not c["passed"]}


def ipledge_ready(api, token, *, first_ago=timedelta(days=21), second_ago=timedelta(days=1), second_sensitivity=25,
                  contraception_days=35, **enrollment):
    """An iPLEDGE patient who can get pregnant, ready for her first prescription unless an argument says
    otherwise: two negative tests (21 days and 1 day ago), two methods started 35 days ago, counseling and the
    comprehension questions."""
    patient_id = enroll(api, token, program="isotretinoin", risk_category="CAN_GET_PREGNANT",
                        time_zone="America/Chicago", **enrollment)
    record_test(api, token, patient_id, first_ago)
    record_test(api, token, patient_id, second_ago, sensitivity=second_sensitivity)
    attest_contraception(api, token, patient_id, methods=("IUD", "MALE_CONDOM"), started_days_ago=contraception_days)
    attest_counseling(api, token, patient_id)
    record_survey(api, token, patient_id)
    return patient_id
