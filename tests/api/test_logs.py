"""Logs carry ids, never names or birth dates: the whole flow, with errors on the way, leaves none in the log."""

import logging
from datetime import timedelta

import pytest

from rems.program.models import Patient

from .flows import attest_contraception, prescribe, record_test, request_rda

pytestmark = pytest.mark.django_db


def test_a_whole_flow_with_errors_logs_no_name_and_no_birth_date(api, world, caplog):
    caplog.set_level(logging.DEBUG, logger="rems")
    caplog.set_level(logging.INFO, logger="django.request")  # every 4xx answer is logged with its path
    caplog.set_level(logging.INFO)
    token = world["ours"].tokens["prescriber"]
    status, patient = api.post("/api/v1/patients/", {
        "program": "pomalidomide", "first_name": "Zebulon", "last_name": "Quixotic-Marsh",
        "date_of_birth": "1977-07-17", "risk_category": "FRP_ADULT", "agreement_signed_on": "2026-01-05",
    }, as_=token)
    assert status == 201
    patient_id = patient["id"]
    record_test(api, token, patient_id, timedelta(days=12))
    record_test(api, token, patient_id, timedelta(hours=2))
    attest_contraception(api, token, patient_id)
    status, decision = prescribe(api, token, patient_id)
    number = decision["authorization_number"]
    request_rda(api, world["ours"].tokens["pharmacist"], number, dob="1977-07-18")  # wrong birth date
    request_rda(api, world["theirs"].tokens["pharmacist"], number, dob="1977-07-17", ndc="59572-0503-21")
    api.get(f"/api/v1/patients/{patient_id}/", as_=world["theirs"].tokens["prescriber"])  # 404, logged as such
    api.post("/api/v1/patients/", raw="{broken", as_=token)  # 400
    record_test(api, token, patient_id, timedelta(hours=1), result="positive")  # alerts, logged by id

    assert caplog.records, "the flow wrote log lines"
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Zebulon" not in text and "Quixotic" not in text and "1977-07-17" not in text
    assert Patient.objects.filter(last_name="Quixotic-Marsh").exists()
