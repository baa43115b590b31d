"""The auditor's pages: the log searched with the API's filters, a prescription's history, reports with charts,
and the CSV export of what was found."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from dispensing import dispenses, prescriptions
from rems.compliance_log.actions import Action
from rems.program.models import AttestationKind
from rems.program.records import attestation_record
from tests.conftest import POMALIDOMIDE_4MG
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def decisions(world, program):
    """One approved and one denied (wrong birth date) dispense decision at our pharmacy."""
    party = world["ours"]
    patient = PatientFactory(prescriber=party.prescriber, program=program, risk_category="MALE_ADULT")
    attestation_record(actor=party.users["prescriber"], patient=patient, kind=AttestationKind.MALE_COUNSELING,
                       now=timezone.now())
    _, _, prescription = prescriptions.prescription_authorize(
        actor=party.users["prescriber"], patient=patient, ndc=POMALIDOMIDE_4MG, quantity=28, days_supply=28,
        now=timezone.now())
    request = {"authorization_number": prescription.authorization_number, "ndc": POMALIDOMIDE_4MG, "quantity": 28,
               "days_supply": 28}
    dispenses.dispense_authorization_request(actor=party.users["pharmacist"], pharmacy=party.pharmacy,
                                              date_of_birth=patient.date_of_birth + timedelta(days=1),
                                              now=timezone.now(), **request)
    _, _, rda = dispenses.dispense_authorization_request(
        actor=party.users["pharmacist"], pharmacy=party.pharmacy, date_of_birth=patient.date_of_birth,
        now=timezone.now(), **request)
    dispenses.dispense_confirm(actor=party.users["pharmacist"], rda=rda, counseling_confirmed=True,
                                medication_guide_provided=True, now=timezone.now())
    return prescription


def test_the_log_is_searched_by_failed_check_and_exported(world, browser, decisions):
    client = browser(world["auditor_user"])
    page = client.get("/audit/", {"failed_check": "PATIENT_DOB_MATCH"}).content.decode()
    rows = re.findall(r"<tr><td data-label=\"#\">\d+</td>", page)
    assert len(rows) == 1 and "dispense_authorization.request" in page and "denied" in page
    link = re.search(r'href="(/audit/export\.csv\?[^"]+)"', page).group(1).replace("&amp;", "&")
    export = client.get(link)
    lines = b"".join(export.streaming_content).decode().strip().splitlines()
    assert export.status_code == 200 and len(lines) == 2 and "PATIENT_DOB_MATCH" in lines[1]


def test_a_date_range_and_bad_filters(world, browser, decisions):
    client = browser(world["auditor_user"])
    today = timezone.localdate()
    page = client.get("/audit/", {"occurred_from": str(today), "occurred_to": str(today),
                                  "action": "dispense_authorization.request"}).content.decode()
    assert len(re.findall(r"<tr><td data-label=\"#\">\d+</td>", page)) == 2
    page = client.get("/audit/", {"occurred_to": str(today - timedelta(days=365))}).content.decode()
    assert "No entry matches." in page
    response = client.get("/audit/", {"failed_check": "lower case; DROP", "prescription": "P-not-a-number"})
    assert response.status_code == 400 and "Enter a valid value" in response.content.decode()


def test_a_prescriptions_history_shows_who_did_what(world, browser, decisions):
    client = browser(world["auditor_user"])
    page = client.get(f"/prescriptions/{decisions.pk}/").content.decode()
    assert page.count("dispense_authorization.request") == 2 and Action.DISPENSE_AUTHORIZATION_DISPENSE in page and "PATIENT_DOB_MATCH" in page
    assert world["ours"].users["pharmacist"].username in page


def test_reports_draw_decisions_failed_checks_and_time_to_dispense(world, browser, decisions):
    client = browser(world["admin_user"])
    response = client.get("/reports/", {"period": "day"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("<canvas data-chart") == 3 and "PATIENT_DOB_MATCH" in page
    assert page.count('<table class="stack figures">') == 3
    assert "Decisions by outcome" in page and "<script>" not in page and " style=" not in page
    assert client.get("/reports/", {"period": "fortnight"}).status_code == 400


@pytest.mark.parametrize("query", [
    {"occurred_to": "9999-12-31"}, {"occurred_from": "0001-01-01"}, {"before": "²"}, {"before": "9" * 5000},
    {"prescription": "not-a-number"}, {"failed_check": "x" * 100}, {"outcome": "y" * 500},
    {"action": "no.such_action"}, {"patient": "p" * 500},
])
def test_hostile_log_searches_are_refused_on_the_form(world, browser, query):
    response = browser(world["auditor_user"]).get("/audit/", query)
    page = response.content.decode()
    assert response.status_code == 400 and ('class="error"' in page or "alert-error" in page)


@pytest.mark.parametrize("query", [{"occurred_to": "9999-12-31"}, {"pharmacy": "x"}, {"period": "minute"}])
def test_hostile_report_queries_are_refused_on_the_form(world, browser, query):
    assert browser(world["auditor_user"]).get("/reports/", query).status_code == 400


def _rows(page):
    return re.findall(r'<tr><td data-label="#">(\d+)</td>', page)


def test_parties_are_found_by_name_or_number_and_filters_ignore_case(world, browser, decisions):
    from rems.compliance_log.models import ComplianceLogEntry
    from rems.core.identifiers import authorization_number_display

    client = browser(world["auditor_user"])
    patient, party = decisions.patient, world["ours"]
    about_patient = ComplianceLogEntry.objects.filter(patient_id=patient.pk).exclude(action__startswith="security.")
    for text in (f"{patient.first_name.upper()} {patient.last_name.lower()}", patient.last_name, str(patient.pk)):
        assert len(_rows(client.get("/audit/", {"patient": text}).content.decode())) == about_patient.count(), text
    assert _rows(client.get("/audit/", {"patient": "nobody by this name"}).content.decode()) == []
    # "Denied" is "denied"; a check code in lower case is the code
    for query in ({"outcome": "Denied"}, {"outcome": "DENIED"}, {"failed_check": "patient_dob_match"}):
        assert len(_rows(client.get("/audit/", query).content.decode())) == 1, query
    # the prescriber by NPI, the pharmacy by NCPDP ID or name, the prescription by its number as printed
    by_npi = _rows(client.get("/audit/", {"prescriber": party.prescriber.npi}).content.decode())
    assert len(by_npi) == ComplianceLogEntry.objects.filter(prescriber_id=party.prescriber.pk).exclude(
        action__startswith="security.").count() > 0
    at_pharmacy = ComplianceLogEntry.objects.filter(pharmacy_id=party.pharmacy.pk).exclude(
        action__startswith="security.").count()
    for text in (party.pharmacy.ncpdp_id, party.pharmacy.name):
        assert len(_rows(client.get("/audit/", {"pharmacy": text}).content.decode())) == at_pharmacy > 0, text
    number = authorization_number_display(decisions.authorization_number).lower()
    assert len(_rows(client.get("/audit/", {"prescription": number}).content.decode())) == 4


def test_security_events_are_apart_from_decisions(world, browser, decisions):
    from django.test import Client

    Client().post("/login", {"username": world["auditor_user"].username, "password": "wrong"})
    client = browser(world["auditor_user"])
    def actions(query):
        return set(re.findall(r'<td data-label="Action" class="code-like">([a-z_.]+)</td>',
                              client.get("/audit/", query).content.decode()))

    assert "security.login_failed" not in actions({}) and "dispense_authorization.request" in actions({})
    assert actions({"kind": "security"}) == {"security.login_failed"}
    assert {"security.login_failed", "dispense_authorization.request"} <= actions({"kind": "all"})
    # the export is what was searched
    export = client.get("/audit/export.csv", {"kind": "security"})
    assert all(line.split(",")[4].startswith("security.")
               for line in b"".join(export.streaming_content).decode().strip().splitlines()[1:])


def test_reports_show_every_period_and_ties_and_minutes(world, browser, decisions):
    from rems.interfaces.portal import charts

    client = browser(world["auditor_user"])
    today = timezone.localdate()
    page = client.get("/reports/", {"period": "day", "occurred_from": str(today - timedelta(days=6)),
                                    "occurred_to": str(today)}).content.decode()
    # every day of the range in each of the three charts: no decision is zero, no dispense is "no dispenses"
    assert page.count("<th scope=\"row\">") == 3 * 7 and "no dispenses" in page
    assert charts.top_codes({"A": 3, "B": 2, "C": 2, "D": 2, "E": 1, "F": 1, "G": 1}, top=5) == list("ABCDEFG")
    assert charts.top_codes({"A": 3, "B": 2, "C": 2, "D": 2, "E": 2, "F": 1}, top=5) == list("ABCDE")
    assert charts.duration(0.25) == "15 min" and charts.duration(5) == "5.0 h" and charts.duration(96) == "4.0 days"
