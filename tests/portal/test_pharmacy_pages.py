"""The pharmacy's counter pages: the check character caught before any lookup, the decision with its reasons,
the counseling checklist, reversal, and the same limits as the API."""

import re

import pytest
from django.test import override_settings
from django.utils import timezone

from dispensing import prescriptions
from dispensing.models import DispenseAuthorization
from rems.compliance_log.models import ComplianceLogEntry
from rems.core.identifiers import authorization_number_display
from tests.conftest import POMALIDOMIDE_4MG
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

DOB = "1970-03-04"


@pytest.fixture
def prescription(world, program):
    patient = PatientFactory(prescriber=world["ours"].prescriber, program=program, first_name="Rui",
                             risk_category="MALE_ADULT", date_of_birth=DOB)  # R. P. (PatientN)
    from rems.program.models import AttestationKind
    from rems.program.records import attestation_record

    attestation_record(actor=world["ours"].users["prescriber"], patient=patient, kind=AttestationKind.MALE_COUNSELING, now=timezone.now())
    decision, _, prescription = prescriptions.prescription_authorize(
        actor=world["ours"].users["prescriber"], patient=patient, ndc=POMALIDOMIDE_4MG, quantity=28, days_supply=28, now=timezone.now())
    assert prescription is not None, decision.checks
    return prescription


def landed(client, response):
    """Every post answers with a redirect (post/redirect/get): the page it lands on."""
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.get(response["Location"])


def counter_data(number, **extra):
    return {"authorization_number": number, "patient_date_of_birth": DOB, "ndc": POMALIDOMIDE_4MG,
            "quantity": "28", "days_supply": "28", **extra}


def mistyped(number):
    last = number[-2]
    return number[:-2] + ("0" if last != "0" else "1") + number[-1]


def test_a_mistyped_number_is_refused_before_any_lookup(world, browser, prescription):
    client = browser(world["ours"].users["pharmacist"])
    before = ComplianceLogEntry.objects.count()
    response = client.post("/counter/", counter_data(mistyped(prescription.authorization_number)))
    assert response["Location"] == "/counter/"
    page = landed(client, response).content.decode()
    assert "check character does not match" in page
    # next to its field, with what was typed kept
    assert re.search(r'id="id_authorization_number_error">[^<]*check character does not match', page)
    assert 'value="1970-03-04"' in page
    # once: a reload shows the empty form
    assert "check character does not match" not in client.get("/counter/").content.decode()
    assert ComplianceLogEntry.objects.count() == before


def test_the_number_is_accepted_as_printed_in_groups_and_in_lower_case(world, browser, prescription):
    client = browser(world["ours"].users["pharmacist"])
    typed = authorization_number_display(prescription.authorization_number).lower()
    response = client.post("/counter/", counter_data(typed))
    rda = DispenseAuthorization.objects.get(prescription=prescription)
    assert response.status_code == 302 and response["Location"] == f"/dispenses/{rda.rda_number}/"


def test_a_wrong_birth_date_is_denied_with_what_to_do(world, browser, prescription):
    client = browser(world["ours"].users["pharmacist"])
    response = client.post("/counter/", counter_data(prescription.authorization_number,
                                                     patient_date_of_birth="1970-03-05"))
    decision = ComplianceLogEntry.objects.get(action="dispense_authorization.request")
    assert response["Location"] == f"/counter/decisions/{decision.id}"
    page = landed(client, response).content.decode()
    assert "PATIENT_DOB_MATCH" in page
    assert "Check the patient&#x27;s date of birth" in page
    assert not DispenseAuthorization.objects.exists()
    # the decision stays at its address: reloaded, it says the same, and asks nothing again
    again = client.get(response["Location"])
    assert again.status_code == 200 and "PATIENT_DOB_MATCH" in again.content.decode()
    assert ComplianceLogEntry.objects.filter(action="dispense_authorization.request").count() == 1


def test_the_dispense_needs_every_counseling_point_and_the_guide(world, browser, prescription):
    client = browser(world["ours"].users["pharmacist"])
    location = client.post("/counter/", counter_data(prescription.authorization_number))["Location"]
    rda = DispenseAuthorization.objects.get()
    ticks = {f"dispense-{name}": "on" for name in
             ("counsel_birth_defects", "counsel_contraception", "counsel_donation", "counsel_return")}
    response = client.post(f"{location}dispense", {**ticks, "dispense-counsel_return": ""})
    assert response["Location"] == location
    assert "Tick every counseling point" in landed(client, response).content.decode()
    rda.refresh_from_db()
    assert rda.status == "approved"
    response = client.post(f"{location}dispense", {**ticks, "dispense-medication_guide_provided": "on"})
    assert response.status_code == 302
    rda.refresh_from_db()
    assert rda.status == "dispensed" and rda.counseling_confirmed and rda.medication_guide_provided
    page = client.get(location).content.decode()
    assert "Dispensed" in page and "Dispense by" not in page
    # who it is for, as far as the prescription shows it, and both numbers, in groups
    assert "R. P., born 1970-03-04" in page
    listed = client.get("/dispenses/").content.decode()
    for number in (rda.rda_number, prescription.authorization_number):
        groups = authorization_number_display(number).split("-")
        assert "".join(f'<span class="number-group">{g}</span>' for g in groups) in listed


def test_a_reversal_needs_a_reason_and_frees_the_authorization(world, browser, prescription):
    client = browser(world["ours"].users["pharmacist"])
    location = client.post("/counter/", counter_data(prescription.authorization_number))["Location"]
    response = client.post(f"{location}reverse", {"reverse-reason": ""})
    assert "This field is required" in landed(client, response).content.decode()
    assert DispenseAuthorization.objects.get().status == "approved"
    assert client.post(f"{location}reverse", {"reverse-reason": "patient left"}).status_code == 302
    assert DispenseAuthorization.objects.get().status == "reversed"
    prescription.refresh_from_db()
    assert prescription.status == "issued"


@override_settings(REMS_DISPENSE_RATE_PER_KEY=2)
def test_the_counter_is_limited_like_the_api(world, browser, prescription, same_minute):
    client = browser(world["ours"].users["pharmacist"])
    for _ in range(2):
        response = client.post("/counter/", counter_data(prescription.authorization_number,
                                                         patient_date_of_birth="1970-01-01"))
        assert response["Location"].startswith("/counter/decisions/")
    response = client.post("/counter/", counter_data(prescription.authorization_number))
    assert "Too many requests" in landed(client, response).content.decode()
    assert not DispenseAuthorization.objects.exists()


def test_a_suspended_pharmacy_sees_no_page_but_its_request_is_decided_and_denied(world, browser, prescription):
    from rems.program.certifications import certification_change_status
    from rems.program.models import Certification

    certification = Certification.objects.get(pharmacy=world["ours"].pharmacy)
    certification_change_status(actor=None, certification=certification, action="suspend", reason="audit",
                                now=timezone.now())
    client = browser(world["ours"].users["pharmacist"])
    assert client.get("/counter/").status_code == 403
    assert client.get("/dispenses/").status_code == 403
    response = client.post("/counter/", counter_data(prescription.authorization_number))
    page = landed(client, response)
    assert page.status_code == 200 and "PHARMACY_CERTIFIED" in page.content.decode()
    assert "Latest at this pharmacy" not in page.content.decode()


def test_the_counter_chooses_the_product_from_the_number_and_offers_none_before(world, browser, prescription):
    client = browser(world["ours"].users["pharmacist"])
    page = client.get("/counter/").content.decode()
    assert '<option value="" selected>Choose the product</option>' in page
    found = client.get("/counter/product", {"number": authorization_number_display(
        prescription.authorization_number).lower()}).json()
    assert found == {"ndc": POMALIDOMIDE_4MG}
    for number in ("", "P123", mistyped(prescription.authorization_number)):
        assert client.get("/counter/product", {"number": number}).json() == {"ndc": ""}


def test_states_are_worded_for_what_happened(world, browser, prescription):
    from datetime import timedelta

    from dispensing.models import Prescription

    office = browser(world["ours"].users["prescriber"])
    page = office.get(f"/prescriptions/{prescription.pk}/").content.decode()
    assert "Open: waiting for a pharmacy" in page and "Valid until" in page
    # past its end, it has lapsed, whether or not the sweep has marked it yet
    Prescription.objects.filter(pk=prescription.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    page = office.get(f"/prescriptions/{prescription.pk}/").content.decode()
    assert "Lapsed undispensed" in page and "Valid until" not in page and "Open:" not in page
