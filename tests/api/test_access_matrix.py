"""The access matrix: every route and method of the API, for each of the six roles, on the caller's own object
and on someone else's, with the expected status written down.

POST requests carry an empty body, so that an allowed caller is stopped by validation (400) after access was
granted, and nothing is changed; the few routes that take no body answer with their success. A route of the API
without an entry here makes `test_every_route_has_an_entry` fail.
"""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import api_key_issue
from dispensing import dispenses, prescriptions
from dispensing.models import MatchLock
from rems.program.models import Certification, Notification, Program

from ..factories import PatientFactory
from ..support.urls import url_patterns

pytestmark = pytest.mark.django_db

ROLES = ("admin", "auditor", "prescriber", "delegate", "pharmacist", "pharmacy_manager")
PROGRAM, OFFICE, PHARMACY = ("admin", "auditor"), ("prescriber", "delegate"), ("pharmacist", "pharmacy_manager")


def row(default=403, **statuses):
    """role -> (status on its own object, status on someone else's); a single number means both."""
    expanded = {}
    for role in ROLES:
        value = statuses.get(role, default)
        expanded[role] = value if isinstance(value, tuple) else (value, value)
    return expanded


def roles(statuses, names):
    return {name: statuses for name in names}


PUBLIC = {"schema", "docs"}

MATRIX = {
    ("program-list", "GET"): row(200),
    ("program-rule-sets", "POST"): row(admin=400),
    ("prescriber-list", "GET"): row(**roles(200, PROGRAM + OFFICE)),
    ("prescriber-list", "POST"): row(admin=400),
    ("prescriber-detail", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("prescriber-certifications", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("prescriber-certifications", "POST"): row(admin=400),
    ("pharmacy-list", "GET"): row(**roles(200, PROGRAM + PHARMACY)),
    ("pharmacy-list", "POST"): row(admin=400),
    ("pharmacy-detail", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), PHARMACY)),
    ("pharmacy-certifications", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), PHARMACY)),
    ("pharmacy-certifications", "POST"): row(admin=400),
    ("certification-detail", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE + PHARMACY)),
    ("certification-suspend", "POST"): row(admin=400),
    ("certification-reinstate", "POST"): row(admin=400),
    ("certification-revoke", "POST"): row(admin=400),
    ("user-list", "GET"): row(admin=200, pharmacy_manager=200),
    ("user-list", "POST"): row(admin=400, pharmacy_manager=400),
    ("user-keys", "GET"): row(admin=200, pharmacy_manager=(200, 404)),
    ("user-keys", "POST"): row(admin=201, pharmacy_manager=(201, 404)),
    ("user-deactivate", "POST"): row(admin=400, pharmacy_manager=(400, 404)),
    ("key-revoke", "POST"): row(admin=200, pharmacy_manager=(200, 404)),
    ("patient-list", "GET"): row(**roles(200, PROGRAM + OFFICE)),
    ("patient-list", "POST"): row(prescriber=400),
    ("patient-detail", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("patient-risk-category", "POST"): row(prescriber=(400, 404)),
    ("patient-suspend", "POST"): row(admin=400),
    ("patient-reinstate", "POST"): row(admin=400),
    ("patient-pregnancy-tests", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("patient-pregnancy-tests", "POST"): row(**roles((400, 404), OFFICE)),
    ("patient-attestations", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("patient-attestations", "POST"): row(**roles((400, 404), OFFICE)),
    ("patient-surveys", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("patient-surveys", "POST"): row(admin=400, **roles((400, 404), OFFICE)),
    ("patient-identifiers", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("patient-identifiers", "POST"): row(**roles((400, 404), OFFICE)),
    ("cds-client-list", "GET"): row(**roles(200, PROGRAM)),
    ("cds-client-list", "POST"): row(admin=400),
    ("cds-client-retire", "POST"): row(admin=400),
    ("prescription-list", "GET"): row(**roles(200, PROGRAM + OFFICE)),
    ("prescription-list", "POST"): row(prescriber=400),
    ("prescription-detail", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("prescription-cancel", "POST"): row(prescriber=(400, 404)),
    ("prescription-history", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), OFFICE)),
    ("rda-list", "GET"): row(**roles(200, PROGRAM + PHARMACY)),
    ("rda-list", "POST"): row(**roles(400, PHARMACY)),
    ("rda-detail", "GET"): row(**roles(200, PROGRAM), **roles((200, 404), PHARMACY)),
    ("rda-dispense", "POST"): row(**roles((400, 404), PHARMACY)),
    ("rda-reverse", "POST"): row(**roles((400, 404), PHARMACY)),
    ("match-lock-list", "GET"): row(**roles(200, PROGRAM)),
    ("match-lock-clear", "POST"): row(admin=400),
    ("audit-event-list", "GET"): row(**roles(200, PROGRAM)),
    ("audit-export-csv", "GET"): row(**roles(200, PROGRAM)),
    ("audit-export-jsonl", "GET"): row(**roles(200, PROGRAM)),
    ("audit-verify", "GET"): row(**roles(200, PROGRAM)),
    ("reports", "GET"): row(**roles(200, PROGRAM)),
    ("notification-list", "GET"): row(200),
    ("notification-read", "POST"): row(auditor=403, **roles((200, 404), ("admin",) + OFFICE + PHARMACY)),
}


def api_routes():
    """(name, method) of every API route, from the URL configuration and each view's declared methods."""
    found = set()
    for route, pattern in url_patterns():
        if not route.startswith("api/v1/"):
            continue
        if pattern.name in PUBLIC:
            continue
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        methods = [m.upper() for m in view.http_method_names if hasattr(view, m) and m not in ("options", "head")]
        found.update((pattern.name, method) for method in methods)
    return found


def test_every_route_has_an_entry():
    routes = api_routes()
    assert routes - set(MATRIX) == set(), "routes without an entry in the access matrix"
    assert set(MATRIX) - routes == set(), "entries for routes that do not exist"


@pytest.fixture
def objects(world):
    """For each party (ours, theirs): a patient with a prescription and an RDA, and what the routes need."""
    program = Program.objects.get(slug="pomalidomide")
    now = timezone.now() - timedelta(hours=1)
    built = {}
    for side in ("ours", "theirs"):
        party = world[side]
        patient = PatientFactory(prescriber=party.prescriber, program=program, risk_category="FNRP_ADULT")
        _, _, prescription = prescriptions.prescription_authorize(
            actor=party.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28,
            now=now)
        _, _, rda = dispenses.dispense_authorization_request(
            actor=party.users["pharmacist"], pharmacy=party.pharmacy,
            authorization_number=prescription.authorization_number, date_of_birth=patient.date_of_birth,
            ndc="59572-0504-21", quantity=21, days_supply=28, now=now)
        lock = MatchLock.objects.create(pharmacy=party.pharmacy, kind="authorization_number", failures=1,
                                        first_failure_at=now, last_failure_at=now)
        built[side] = {"party": party, "patient": patient, "prescription": prescription, "rda": rda, "lock": lock}
    return built


def _cds_client():
    from rems.program.models import CdsClient

    return CdsClient.objects.create(issuer=f"https://{uuid.uuid4()}.example", jwk={}, algorithm="ES384",
                                    registered_at=timezone.now())


def _user(world, role, side):
    if role in ("admin", "auditor"):
        return world[f"{role}_user"]
    return world[side].users[role]


def _notification_for(user):
    now = timezone.now()
    return Notification.objects.create(
        recipient=user, kind="survey_due", subject_type="patient", subject_id=uuid.uuid4().hex, due_on=now.date(),
        send_at=now,
        title="t", body="b", next_attempt_at=now, created_at=now)


def _kwargs(name, role, objects, world, own):
    """The path arguments of route `name` for `role`: its own object, or the other party's."""
    if name.endswith("-list") or name.startswith(("audit-", "reports")):
        return {}
    if name == "program-rule-sets":
        return {"slug": "pomalidomide"}
    if name == "cds-client-retire":
        return {"pk": _cds_client().pk}
    side = "ours" if own else "theirs"
    o, party = objects[side], objects[side]["party"]
    if name in ("prescriber-detail", "prescriber-certifications"):
        return {"pk": party.prescriber.pk}
    if name in ("pharmacy-detail", "pharmacy-certifications"):
        return {"pk": party.pharmacy.pk}
    if name.startswith("certification-"):
        field = {"pharmacy": party.pharmacy} if role in PHARMACY else {"prescriber": party.prescriber}
        return {"pk": Certification.objects.get(**field).pk}
    if name in ("user-keys", "user-deactivate"):
        return {"pk": party.users["pharmacist"].pk}
    if name == "key-revoke":
        return {"pk": api_key_issue(actor=None, user=party.users["pharmacist"], now=timezone.now())[0].pk}
    if name.startswith("patient-"):
        return {"pk": o["patient"].pk}
    if name in ("prescription-detail", "prescription-cancel", "prescription-history"):
        return {"pk": o["prescription"].pk}
    if name.startswith("rda-"):
        return {"rda_number": o["rda"].rda_number}
    if name == "match-lock-clear":
        return {"pk": o["lock"].pk}
    if name == "notification-read":
        owner = _user(world, role, "ours") if own else world["theirs"].users["prescriber"]
        return {"pk": _notification_for(owner).pk}
    return {}


def _call(api, method, path, token):
    if method == "GET":
        response = api.client.get(path, HTTP_AUTHORIZATION=f"Token {token}")
    else:
        response = api.client.post(path, data="{}", content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Token {token}")
    return response.status_code


def _token(world, role):
    return world[role] if role in PROGRAM else world["ours"].tokens[role]


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]}:{r[1]}")
def test_the_matrix(api, world, objects, route):
    name, method = route
    expected = MATRIX[route]
    seen = {}
    # Refused callers first, so that an allowed call that changes something cannot affect the others.
    order = sorted(ROLES, key=lambda role: expected[role][0] not in (403,))
    for role in order:
        for own in (False, True):
            path = reverse(name, kwargs=_kwargs(name, role, objects, world, own))
            seen[(role, "own" if own else "other")] = _call(api, method, path, _token(world, role))
    wanted = {(role, which): expected[role][i] for role in ROLES for i, which in enumerate(("own", "other"))}
    assert seen == wanted
    # Nobody unauthenticated gets anything.
    path = reverse(name, kwargs=_kwargs(name, "admin", objects, world, True))
    response = api.client.get(path) if method == "GET" else api.client.post(path, data="{}",
                                                                            content_type="application/json")
    assert response.status_code == 401
