"""The prescriber's pages, through the Django test client: the same services, scope and log as the API."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from dispensing.models import Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import Attestation, Patient, PregnancyTest
from tests.conftest import POMALIDOMIDE_4MG

pytestmark = pytest.mark.django_db


def local(moment):
    """How a datetime-local field sends a moment (the session's zone is UTC unless the browser said otherwise)."""
    return timezone.localtime(moment, timezone.get_fixed_timezone(0)).strftime("%Y-%m-%dT%H:%M")


def landed(client, response):
    """Every post answers with a redirect (post/redirect/get): the page it lands on."""
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.get(response["Location"])


def enroll(client, **extra):
    data = {"program": "pomalidomide", "first_name": "Ann", "last_name": "Portal", "date_of_birth": "1990-05-01",
            "risk_category": "FRP_ADULT", "agreement_signed_on": str(timezone.now().date()), **extra}
    response = client.post("/patients/new", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Patient.objects.get(last_name=data["last_name"])


def ready(client, patient):
    now = timezone.now()
    for ago in (timedelta(days=12), timedelta(hours=2)):
        response = client.post(f"/patients/{patient.pk}/pregnancy-tests",
                                {"test-collected_at": local(now - ago), "test-result": "negative",
                                 "test-sensitivity_miu_ml": "25"})
        assert response.status_code == 302, response.content.decode()[:3000]
    response = client.post(f"/patients/{patient.pk}/attestations",
                            {"attestation-methods": ["IUD", "MALE_CONDOM"],
                             "attestation-started_on": str((now - timedelta(weeks=5)).date())})
    assert response.status_code == 302, response.content.decode()[:3000]


def test_a_prescriber_enrolls_records_and_obtains_an_authorization(world, browser):
    client = browser(world["ours"].users["prescriber"])
    patient = enroll(client)
    page = client.get("/patients/").content.decode()
    assert "Portal, Ann" in page and "Missing" in page
    ready(client, patient)
    assert PregnancyTest.objects.filter(patient=patient).count() == 2
    assert Attestation.objects.filter(patient=patient).count() == 1
    response = client.post(f"/patients/{patient.pk}/authorize",
                           {"rx-ndc": POMALIDOMIDE_4MG, "rx-quantity": "21", "rx-days_supply": "28"})
    prescription = Prescription.objects.get(patient=patient)
    assert response.status_code == 302 and response["Location"] == f"/prescriptions/{prescription.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert prescription.authorization_number[:5] in page and "FRP_ADULT" in page
    assert ComplianceLogEntry.objects.filter(action="prescription.authorize", outcome="approved",
                                             actor_username=world["ours"].users["prescriber"].username).exists()


def test_a_denied_authorization_lists_every_failed_check_with_what_to_do(world, browser):
    client = browser(world["ours"].users["prescriber"])
    patient = enroll(client)
    response = client.post(f"/patients/{patient.pk}/authorize",
                           {"rx-ndc": POMALIDOMIDE_4MG, "rx-quantity": "21", "rx-days_supply": "28"})
    entry = ComplianceLogEntry.objects.get(action="prescription.authorize", outcome="denied")
    assert response["Location"] == f"/patients/{patient.pk}/decisions/{entry.id}"
    page = landed(client, response).content.decode()
    for code in ("PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "CONTRACEPTION_ATTESTED"):
        assert code in page
    assert "What to do:" in page and "Record a negative pregnancy test collected 10 to 14 days" in page
    assert 'value="21"' in page  # the form as it was sent
    assert not Prescription.objects.exists()
    # the decision has an address: reloaded or shared, the same panel; nothing is decided again
    again = client.get(response["Location"])
    assert again.status_code == 200 and "PREGNANCY_TEST_FIRST" in again.content.decode()
    assert ComplianceLogEntry.objects.filter(action="prescription.authorize", outcome="denied").count() == 1


def test_invalid_input_is_shown_on_the_form_and_writes_nothing(world, browser):
    client = browser(world["ours"].users["prescriber"])
    patient = enroll(client)
    before = ComplianceLogEntry.objects.count()
    response = client.post(f"/patients/{patient.pk}/pregnancy-tests",
                           {"test-collected_at": "yesterday", "test-result": "maybe", "test-sensitivity_miu_ml": "-1"})
    assert response["Location"] == f"/patients/{patient.pk}/#test-title"
    page = landed(client, response).content.decode()
    assert re.search(r'id="id_test-collected_at_error">[^<]*Enter a valid date/time', page)
    assert "Enter a valid date/time" not in client.get(f"/patients/{patient.pk}/").content.decode()
    response = client.post(f"/patients/{patient.pk}/attestations",
                           {"attestation-methods": ["IUD"], "attestation-abstinence": "on",
                            "attestation-started_on": "2026-01-01"})
    assert "not both" in landed(client, response).content.decode()
    # a refusal of the service that names its field is shown next to that field
    response = client.post(f"/patients/{patient.pk}/pregnancy-tests",
                           {"test-collected_at": local(timezone.now() + timedelta(days=3)), "test-result": "negative",
                            "test-sensitivity_miu_ml": "25"})
    assert re.search(r'id="id_test-collected_at_error">[^<]*future', landed(client, response).content.decode())
    assert ComplianceLogEntry.objects.count() == before
    assert not PregnancyTest.objects.filter(patient=patient).exists()


def test_enrolling_ones_own_patient_again_leads_to_the_record(world, browser):
    client = browser(world["ours"].users["prescriber"])
    patient = enroll(client)
    response = client.post("/patients/new", {
        "program": "pomalidomide", "first_name": "ann", "last_name": "PORTAL", "date_of_birth": "1990-05-01",
        "risk_category": "FRP_ADULT", "agreement_signed_on": str(timezone.now().date())})
    assert response["Location"] == f"/patients/{patient.pk}/"
    assert "already enrolled by your office" in landed(client, response).content.decode()
    assert Patient.objects.count() == 1


def test_enrolling_another_offices_patient_asks_the_administrator_and_shows_nothing(world, browser):
    enroll(browser(world["ours"].users["prescriber"]))
    client = browser(world["theirs"].users["prescriber"])
    response = client.post("/patients/new", {
        "program": "pomalidomide", "first_name": "ann", "last_name": "PORTAL", "date_of_birth": "1990-05-01",
        "risk_category": "FRP_ADULT", "agreement_signed_on": str(timezone.now().date())})
    assert response["Location"] == "/patients/"
    page = landed(client, response).content.decode()
    assert "program administrator" in page and "PORTAL" not in page and "already" not in page
    assert Patient.objects.count() == 1


def test_a_delegate_records_but_neither_enrolls_nor_authorizes(world, browser):
    prescriber = browser(world["ours"].users["prescriber"])
    patient = enroll(prescriber)
    delegate = browser(world["ours"].users["delegate"])
    assert delegate.get("/patients/new").status_code == 403
    assert delegate.post(f"/patients/{patient.pk}/authorize",
                         {"rx-ndc": POMALIDOMIDE_4MG, "rx-quantity": "21", "rx-days_supply": "28"}).status_code == 403
    ready(delegate, patient)
    assert PregnancyTest.objects.filter(patient=patient).count() == 2


def test_the_patient_list_costs_the_same_queries_for_2_patients_and_for_40(world, browser, program):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import PatientFactory

    client = browser(world["ours"].users["prescriber"])

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/patients/").status_code == 200
        return len(captured)

    for _ in range(2):
        PatientFactory(prescriber=world["ours"].prescriber, program=program)
    few = queries()
    for _ in range(38):
        PatientFactory(prescriber=world["ours"].prescriber, program=program)
    assert queries() == few


@pytest.mark.parametrize("query", [{"q": "nul\x00byte"}, {"q": "x" * 500}, {"page": "999999"}, {"page": "-1"},
                                   {"page": "²"}])
def test_hostile_patient_list_queries_never_fail(world, browser, query):
    status = browser(world["ours"].users["prescriber"]).get("/patients/", query).status_code
    assert status in (200, 400)
    if "q" in query:
        assert status == 400


def test_a_date_out_of_range_is_a_form_error(world, browser):
    client = browser(world["ours"].users["prescriber"])
    patient = enroll(client)
    response = client.post(f"/patients/{patient.pk}/pregnancy-tests",
                           {"test-collected_at": "9999-12-31T23:59", "test-result": "negative",
                            "test-sensitivity_miu_ml": "25"})
    assert "Give a date between" in landed(client, response).content.decode()
    response = client.post("/patients/new", {
        "program": "pomalidomide", "first_name": "Old", "last_name": "Date", "date_of_birth": "0001-01-01",
        "risk_category": "MALE_ADULT", "agreement_signed_on": str(timezone.now().date())})
    assert "Give a date between" in landed(client, response).content.decode()
    assert not Patient.objects.filter(last_name="Date").exists()


def test_the_forms_choose_nothing_for_the_prescriber_but_the_package(world, browser):
    client = browser(world["ours"].users["prescriber"])
    page = client.get("/patients/new").content.decode()
    assert '<option value="" selected>Choose the risk category</option>' in page
    assert '<option value="" selected>Choose the program</option>' in page
    patient = enroll(client)
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    # every product with its whole NDC, none chosen; the quantity is one package (every Pomalidomide bottle)
    assert f"{POMALIDOMIDE_4MG} · Pomalidomide 4 mg" in page
    assert not re.search(r'name="rx-ndc"[^>]*checked', page)
    assert re.search(r'name="rx-quantity" value="21"', page)


def test_a_posted_route_opened_as_a_page_is_the_patients_page(world, browser):
    client = browser(world["ours"].users["prescriber"])
    patient = enroll(client)
    response = client.get(f"/patients/{patient.pk}/authorize")
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"
