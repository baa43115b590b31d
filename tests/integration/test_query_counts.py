"""Queries counted, not timed: each decision and each of the busiest pages costs an exact number of statements,
the same for a patient with 2 pregnancy tests and one with 500, and for a list of 2 patients and one of 40. A
creep from 6 to 12 fails here. (Savepoints are not counted: they cost no round trip of their own worth
tracking, and they follow the nesting of transactions, not the work.)"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispensing import dispenses, prescriptions
from rems.program import records
from rems.program.models import PregnancyTest, Program
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
NDC = "59572-0504-21"
SHORT, LONG = 2, 500  # pregnancy tests on file

# The decisions, in the service (no HTTP). The prescription decision: the patient's row and the rule sets locked,
# the facts, the authorization, the log entry. The dispense decision: the pharmacy's turn and the
# rule sets locked, the failed-match lock, the facts, the authorization taken with the RDA, the log entry.
PRESCRIPTION_DECISION = 4
DISPENSE_DECISION = 5
# A trivial authenticated read over the API: the key lookup and the row read (the key's use is noted at most once a
# minute, by the first request).
TRIVIAL_READ = 2
# The pages, from the signed-in session to the rendered page.
PAGES = {
    "patient list": 12,
    "patient page": 16,
    "prescription page": 6,  # the category's label comes from the rule set
    "counter": 5,
    "counter decision": 10,
    "dispense page": 4,
    "dispense list": 5,
    "compliance log": 5,
    "reports": 7,
}


def _listing(statements):
    return "\n".join(f"{i}. {sql[:150]}" for i, sql in enumerate(statements, 1))


def _statements(captured):
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def _frp_patient(world, tests):
    office = world["ours"].users["prescriber"]
    now = timezone.now()
    patient = PatientFactory(prescriber=world["ours"].prescriber, program=Program.objects.get(slug="pomalidomide"),
                             risk_category="FRP_ADULT")
    PregnancyTest.objects.bulk_create([
        PregnancyTest(patient=patient, collected_at=now - timedelta(days=30 + i), result="negative",
                      sensitivity_miu_ml=25, recorded_at=now, recorded_by=office)
        for i in range(tests - 2)
    ])
    for ago in (timedelta(days=12), timedelta(hours=2)):
        records.pregnancy_test_record(actor=office, patient=patient, collected_at=now - ago, result="negative",
                                      sensitivity_miu_ml=25, now=now)
    records.attestation_record(actor=office, patient=patient, kind="contraception", methods=["IUD", "MALE_CONDOM"],
                               started_on=(now - timedelta(days=40)).date(), now=now)
    return patient


def _decide_both(world, patient):
    ours = world["ours"]
    now = timezone.now()
    with CaptureQueriesContext(connection) as prescription_queries:
        decision, _, prescription = prescriptions.prescription_authorize(
            actor=ours.users["prescriber"], patient=patient, ndc=NDC, quantity=21, days_supply=28, now=now)
    assert decision.approved, decision.failed_codes
    with CaptureQueriesContext(connection) as dispense_queries:
        decision, _, rda = dispenses.dispense_authorization_request(
            actor=ours.users["pharmacist"], pharmacy=ours.pharmacy,
            authorization_number=prescription.authorization_number, date_of_birth=patient.date_of_birth,
            ndc=NDC, quantity=21, days_supply=28, now=now)
    assert decision.approved, decision.failed_codes
    return _statements(prescription_queries), _statements(dispense_queries), prescription, rda


def test_a_trivial_authenticated_read_costs_the_key_lookup_and_its_own_read(world):
    ours = world["ours"]
    client, token = Client(), ours.tokens["pharmacist"]
    path = f"/api/v1/pharmacies/{ours.pharmacy.pk}/"
    assert client.get(path, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200  # notes the key's use

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, HTTP_AUTHORIZATION=f"Token {token}")

    assert response.status_code == 200
    statements = _statements(captured)
    assert len(statements) == TRIVIAL_READ, _listing(statements)
    assert "accounts_apikey" in statements[0]  # the key, its user, party and bar: one statement


@pytest.mark.parametrize("tests", [SHORT, LONG])
def test_each_decision_costs_an_exact_number_of_statements(world, tests):
    prescription_queries, dispense_queries, _, _ = _decide_both(world, _frp_patient(world, tests))

    assert PregnancyTest.objects.count() == tests
    assert len(prescription_queries) == PRESCRIPTION_DECISION, _listing(prescription_queries)
    assert len(dispense_queries) == DISPENSE_DECISION, _listing(dispense_queries)


def _page(client, method, path, data=None, expect=200):
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, data or {})
    assert response.status_code == expect, response.content.decode()[:2000]
    return _statements(captured)


def _signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def _pages(world, patients, tests):
    """The statements of each busy page, with `patients` FRP patients of `tests` pregnancy tests each, one of them
    prescribed and dispensed through the counter."""
    ours = world["ours"]
    people = [_frp_patient(world, tests) for _ in range(patients)]
    _, _, prescription, _ = _decide_both(world, people[0])
    office, counter, auditor = (_signed_in(ours.users["prescriber"]), _signed_in(ours.users["pharmacist"]),
                                _signed_in(world["auditor_user"]))
    # A second authorization, for the counter to decide on through the page.
    _, _, second = _decide_both_prescription_only(world, people[1])
    seen = {
        "patient list": _page(office, "get", "/patients/"),
        "patient page": _page(office, "get", f"/patients/{people[0].pk}/"),
        "prescription page": _page(office, "get", f"/prescriptions/{prescription.pk}/"),
        "counter": _page(counter, "get", "/counter/"),
        "counter decision": _page(counter, "post", "/counter/", {
            "authorization_number": second.authorization_number, "patient_date_of_birth": str(people[1].date_of_birth),
            "ndc": NDC, "quantity": "21", "days_supply": "28"}, expect=302),
        "dispense list": _page(counter, "get", "/dispenses/"),
        "compliance log": _page(auditor, "get", "/audit/", {"patient": str(people[0].pk)}),
        "reports": _page(auditor, "get", "/reports/"),
    }
    rda = second.dispense_authorizations.get()
    seen["dispense page"] = _page(counter, "get", f"/dispenses/{rda.rda_number}/")
    return seen


def _decide_both_prescription_only(world, patient):
    decision, entry, prescription = prescriptions.prescription_authorize(
        actor=world["ours"].users["prescriber"], patient=patient, ndc=NDC, quantity=21, days_supply=28,
        now=timezone.now())
    assert decision.approved, decision.failed_codes
    return decision, entry, prescription


@pytest.mark.parametrize("patients, tests", [(2, SHORT), (2, LONG), (40, SHORT)])
def test_the_busiest_pages_cost_an_exact_number_of_statements(world, patients, tests):
    seen = _pages(world, patients, tests)

    counts = {name: len(statements) for name, statements in seen.items()}
    assert counts == PAGES, "\n\n".join(f"{name}: {counts[name]}\n{_listing(seen[name])}"
                                        for name in seen if counts[name] != PAGES[name])
