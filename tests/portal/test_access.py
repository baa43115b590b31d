"""Who may open which page: every page of the portal for each role, and another party's objects are not found,
exactly as in the API. A page without an entry here makes `test_every_page_has_an_entry` fail."""

import re

import pytest
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from dispensing import dispenses, prescriptions
from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import AttestationKind
from rems.program.records import attestation_record
from tests.conftest import POMALIDOMIDE_4MG
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ("admin", "auditor", "prescriber", "delegate", "pharmacist", "pharmacy_manager")
OFFICE, PHARMACY, READERS = {"prescriber", "delegate"}, {"pharmacist", "pharmacy_manager"}, {"admin", "auditor"}

# page name -> (roles that may open it with GET; a route only for POST lists None)
PAGES = {
    "home": set(ROLES),
    "favicon": set(ROLES),
    "login": set(ROLES),
    "logout": None,
    "patients": OFFICE,
    "patient-enroll": {"prescriber"},
    "patient": OFFICE | READERS,
    "patient-test": None,
    "patient-attestation": None,
    "patient-survey": None,
    "patient-authorize": None,
    "patient-decision": OFFICE | READERS,
    "prescription": OFFICE | READERS,
    "prescription-cancel": None,
    "counter": PHARMACY,
    "counter-decision": PHARMACY,
    "counter-product": PHARMACY,
    "dispenses": PHARMACY,
    "rda": PHARMACY | READERS,
    "rda-dispense": None,
    "rda-reverse": None,
    "audit": READERS,
    "audit-export": READERS,
    "reports": READERS,
}
PUBLIC = ("login", "home", "favicon")
NOT_HTML = ("favicon", "audit-export", "counter-product")


def portal_pages():
    return {pattern.name for include in get_resolver().url_patterns if getattr(include, "namespace", None) == "portal"
            for pattern in include.url_patterns}


def test_every_page_has_an_entry():
    assert portal_pages() == set(PAGES)


@pytest.fixture
def objects(world, program):
    built = {}
    for side in ("ours", "theirs"):
        party = world[side]
        prescriber = party.users["prescriber"]
        patient = PatientFactory(prescriber=party.prescriber, program=program, risk_category="MALE_ADULT")
        attestation_record(actor=prescriber, patient=patient, kind=AttestationKind.MALE_COUNSELING,
                           now=timezone.now())
        _, _, prescription = prescriptions.prescription_authorize(
            actor=prescriber, patient=patient, ndc=POMALIDOMIDE_4MG, quantity=28, days_supply=28, now=timezone.now())
        # a denied request of each kind: a second prescription while one is open, a wrong date of birth
        _, denied_rx, _ = prescriptions.prescription_authorize(
            actor=prescriber, patient=patient, ndc=POMALIDOMIDE_4MG, quantity=28, days_supply=28, now=timezone.now())
        request = {"authorization_number": prescription.authorization_number, "ndc": POMALIDOMIDE_4MG,
                   "quantity": 28, "days_supply": 28, "now": timezone.now()}
        _, denied_rda, _ = dispenses.dispense_authorization_request(
            actor=party.users["pharmacist"], pharmacy=party.pharmacy,
            date_of_birth=patient.date_of_birth.replace(year=patient.date_of_birth.year - 1), **request)
        _, _, rda = dispenses.dispense_authorization_request(
            actor=party.users["pharmacist"], pharmacy=party.pharmacy, date_of_birth=patient.date_of_birth, **request)
        built[side] = {"patient": patient, "prescription": prescription, "rda": rda,
                       "denied_rx": denied_rx, "denied_rda": denied_rda}
    return built


def users(world):
    ours = world["ours"].users
    return {"admin": world["admin_user"], "auditor": world["auditor_user"], **ours}


def path(name, objs):
    return {
        "home": "/", "login": "/login", "logout": "/logout", "patients": "/patients/", "patient-enroll": "/patients/new",
        "patient": f"/patients/{objs['patient'].pk}/",
        "patient-test": f"/patients/{objs['patient'].pk}/pregnancy-tests",
        "patient-attestation": f"/patients/{objs['patient'].pk}/attestations",
        "patient-survey": f"/patients/{objs['patient'].pk}/surveys",
        "patient-authorize": f"/patients/{objs['patient'].pk}/authorize",
        "patient-decision": f"/patients/{objs['patient'].pk}/decisions/{objs['denied_rx'].id}",
        "counter-decision": f"/counter/decisions/{objs['denied_rda'].id}",
        "counter-product": f"/counter/product?number={objs['prescription'].authorization_number}",
        "audit-export": "/audit/export.csv", "favicon": "/favicon.ico",
        "prescription": f"/prescriptions/{objs['prescription'].pk}/",
        "prescription-cancel": f"/prescriptions/{objs['prescription'].pk}/cancel",
        "counter": "/counter/", "dispenses": "/dispenses/",
        "rda": f"/dispenses/{objs['rda'].rda_number}/",
        "rda-dispense": f"/dispenses/{objs['rda'].rda_number}/dispense",
        "rda-reverse": f"/dispenses/{objs['rda'].rda_number}/reverse",
        "audit": "/audit/", "reports": "/reports/",
    }[name]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_its_pages_and_no_other(world, objects, browser, role):
    client = browser(users(world)[role])
    for name, allowed in PAGES.items():
        if allowed is None or name in PUBLIC:
            continue
        status = client.get(path(name, objects["ours"])).status_code
        assert status == (200 if role in allowed else 403), (name, role, status)


# POST-only routes: the roles that may post (anyone else gets 403 and nothing is written).
POSTS = {
    "patient-test": OFFICE, "patient-attestation": OFFICE, "patient-survey": OFFICE,
    "patient-authorize": {"prescriber"}, "prescription-cancel": {"prescriber"},
    "rda-dispense": PHARMACY, "rda-reverse": PHARMACY,
}


def test_every_post_only_route_has_its_roles():
    assert set(POSTS) == {name for name, allowed in PAGES.items() if allowed is None} - {"logout"}


@pytest.mark.parametrize("role", ROLES)
def test_a_role_that_may_not_post_is_refused_and_nothing_is_written(world, objects, browser, role):
    from dispensing.models import DispenseAuthorization, Prescription
    from rems.program.models import Attestation, PatientSurvey, PregnancyTest

    client = browser(users(world)[role])
    models = (PregnancyTest, Attestation, PatientSurvey, Prescription, DispenseAuthorization)

    def state():
        return ([m.objects.count() for m in models], list(Prescription.objects.values_list("status", flat=True)),
                list(DispenseAuthorization.objects.values_list("status", flat=True)))

    before = state()
    last_seq = ComplianceLogEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
    for name, allowed in POSTS.items():
        if role in allowed:
            continue
        response = client.post(path(name, objects["ours"]), {"reverse-reason": "x", "cancel-reason": "x"})
        assert response.status_code == 403, (name, role, response.status_code)
    assert state() == before
    assert not ComplianceLogEntry.objects.filter(seq__gt=last_seq, action__in=[
        "pregnancy_test.record", "prescription.authorize", "prescription.cancel", Action.DISPENSE_AUTHORIZATION_DISPENSE,
        "dispense_authorization.reverse"], actor_role=role).exists()


def test_signed_out_every_page_asks_to_sign_in(objects):
    client = Client()
    for name, allowed in PAGES.items():
        if name in ("login", "logout", "favicon"):
            continue
        response = client.get(path(name, objects["ours"]))
        assert response.status_code == 302, name
        assert response["Location"].startswith("/login"), name
    assert client.get("/login").status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_a_post_only_route_opened_as_a_page_sends_to_its_page(world, objects, browser, role):
    """A reload after a post, a bookmark or a shared link: never a bare 405."""
    client = browser(users(world)[role])
    pages = {"patient-test": "patient", "patient-attestation": "patient", "patient-survey": "patient",
             "patient-authorize": "patient", "prescription-cancel": "prescription", "rda-dispense": "rda",
             "rda-reverse": "rda"}
    for name, target in pages.items():
        response = client.get(path(name, objects["ours"]))
        if role in POSTS[name]:
            assert response.status_code == 302 and response["Location"] == path(target, objects["ours"]), name
        else:
            assert response.status_code == 403, (name, role)


def test_the_favicon_is_found_signed_out(db):
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("portal/favicon.ico")


@pytest.mark.parametrize("role", ["prescriber", "delegate"])
def test_another_prescribers_patient_and_prescription_are_not_found(world, objects, browser, role):
    client = browser(users(world)[role])
    theirs = objects["theirs"]
    before = ComplianceLogEntry.objects.count()
    for name in ("patient", "prescription", "patient-decision"):
        assert client.get(path(name, theirs)).status_code == 404, name
    # a decision about another patient, at our patient's address
    mixed = f"/patients/{objects['ours']['patient'].pk}/decisions/{theirs['denied_rx'].id}"
    assert client.get(mixed).status_code == 404
    for name in ("patient-test", "patient-attestation", "patient-survey") + (
            ("patient-authorize", "prescription-cancel") if role == "prescriber" else ()):
        assert client.post(path(name, theirs), {}).status_code == 404, name
    assert ComplianceLogEntry.objects.count() == before
    assert client.get(path("patient", objects["ours"])).status_code == 200


@pytest.mark.parametrize("role", ["pharmacist", "pharmacy_manager"])
def test_another_pharmacys_rda_is_not_found(world, objects, browser, role):
    client = browser(users(world)[role])
    theirs = objects["theirs"]
    for name in ("rda", "counter-decision"):
        assert client.get(path(name, theirs)).status_code == 404, name
    # another pharmacy's open authorization: its product is not told
    assert client.get(path("counter-product", theirs)).json() == {"ndc": ""}
    for name in ("rda-dispense", "rda-reverse"):
        assert client.post(path(name, theirs), {"reverse-reason": "x"}).status_code == 404
    theirs["rda"].refresh_from_db()
    assert theirs["rda"].status == "approved"
    assert client.get(path("rda", objects["ours"])).status_code == 200
    # a malformed number is not found either, never a 500
    assert client.get("/dispenses/not-a-number/").status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_every_page_has_the_policy_and_no_inline_script_or_style(world, objects, browser, role):
    client = browser(users(world)[role])
    # figures carried as data (`type="application/json"`) are not scripts: no browser runs them
    inline_script = re.compile(r"<script(?![^>]*\b(src=|type=\"application/json\"))[^>]*>", re.I)
    for name, allowed in PAGES.items():
        if allowed is None or role not in allowed or name in ("home",) + NOT_HTML:
            continue
        response = client.get(path(name, objects["ours"]))
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        page = response.content.decode()
        assert not inline_script.search(page), name
        assert not re.search(r"\sstyle=|\son[a-z]+=", page), name


def test_a_page_error_is_a_page_and_an_api_error_a_problem(world, browser):
    client = browser(users(world)["prescriber"])
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    api = client.get("/api/v1/no-such-route/")
    assert api.status_code == 404 and api["Content-Type"] == "application/problem+json"


def test_login_keeps_the_browsers_time_zone_and_locks_out_after_repeated_failures(db, program):
    user = UserFactory(role="auditor", username="pat-auditor")
    user.set_password("a-long-enough-passphrase-42")
    user.save()
    client = Client()
    response = client.post("/login", {"username": "pat-auditor", "password": "a-long-enough-passphrase-42",
                                      "time_zone": "America/Chicago"})
    assert response.status_code == 302 and client.session["time_zone"] == "America/Chicago"
    assert "America/Chicago" in client.get("/audit/").content.decode()
    client.post("/logout")
    assert client.get("/audit/").status_code == 302
    bad = Client()
    assert bad.post("/login", {"username": "pat-auditor", "password": "x", "time_zone": "Mars/Base"}).status_code == 200
    for _ in range(5):
        bad.post("/login", {"username": "pat-auditor", "password": "wrong"})
    response = bad.post("/login", {"username": "pat-auditor", "password": "a-long-enough-passphrase-42"})
    assert response.status_code == 200 and "locked" in response.content.decode()
    assert ComplianceLogEntry.objects.filter(action="security.lockout").exists()
