"""Each role acts within its own scope: what belongs to someone else is not found (404), like what does not exist.
(The full access matrix over every route is part of the access-control work.)"""

import pytest

from rems.program.models import Certification

from .flows import confirm_dispense, enroll, prescribe, request_rda

pytestmark = pytest.mark.django_db


def test_a_prescriber_cannot_see_or_act_on_another_prescribers_patient(api, world):
    theirs_patient = enroll(api, world["theirs"].tokens["prescriber"], risk_category="FNRP_ADULT")
    token = world["ours"].tokens["prescriber"]

    assert api.get(f"/api/v1/patients/{theirs_patient}/", as_=token)[0] == 404
    assert api.get(f"/api/v1/patients/{theirs_patient}/pregnancy-tests/", as_=token)[0] == 404
    assert api.post(f"/api/v1/patients/{theirs_patient}/attestations/", {"kind": "male_counseling"}, as_=token)[0] == 404
    assert prescribe(api, token, theirs_patient)[0] == 404
    status, listing = api.get("/api/v1/patients/", as_=token)
    assert status == 200 and theirs_patient not in [p["id"] for p in listing["results"]]


def test_a_pharmacy_cannot_see_or_act_on_another_pharmacys_rda(api, world):
    ours, theirs = world["ours"], world["theirs"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    _, rda = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"])

    assert api.get(f"/api/v1/dispense-authorizations/{rda['rda_number']}/", as_=theirs.tokens["pharmacist"])[0] == 404
    assert confirm_dispense(api, theirs.tokens["pharmacist"], rda["rda_number"])[0] == 404
    assert api.post(f"/api/v1/dispense-authorizations/{rda['rda_number']}/reverse", {"reason": "x"},
                    as_=theirs.tokens["pharmacist"])[0] == 404
    status, listing = api.get("/api/v1/dispense-authorizations/", as_=theirs.tokens["pharmacist"])
    assert status == 200 and listing["results"] == []


def test_pharmacies_never_list_patients(api, world):
    enroll(api, world["ours"].tokens["prescriber"], risk_category="FNRP_ADULT")
    assert api.get("/api/v1/patients/", as_=world["ours"].tokens["pharmacist"])[0] == 403


def test_a_delegate_records_but_never_obtains_an_authorization(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="MALE_ADULT")

    assert api.post(f"/api/v1/patients/{patient_id}/attestations/", {"kind": "male_counseling"},
                    as_=ours.tokens["delegate"])[0] == 201
    assert prescribe(api, ours.tokens["delegate"], patient_id)[0] == 403


def test_the_auditor_reads_the_log_and_changes_nothing(api, world):
    ours = world["ours"]
    enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    status, events = api.get("/api/v1/audit-events/?action=patient.enroll", as_=world["auditor"])
    assert status == 200 and len(events["results"]) == 1
    assert "first_name" not in str(events) and "date_of_birth" not in str(events["results"][0]["facts"])
    certification = Certification.objects.get(prescriber=ours.prescriber)
    assert api.post(f"/api/v1/certifications/{certification.pk}/suspend", {"reason": "x"},
                    as_=world["auditor"])[0] == 403
    assert api.get("/api/v1/audit-events/", as_=ours.tokens["prescriber"])[0] == 403
