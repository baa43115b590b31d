"""The admin site: every change of state is an action that asks first (a reason, or a program), goes through the
service and so the compliance log; refusals are messages; no model form saves anything."""

import copy
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey, Role, User
from accounts.services import user_deactivate
from dispensing.match_locks import match_lock_clear
from dispensing.models import MatchLock, MatchLockKind
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.certifications import certification_change_status, certification_create
from rems.program.models import Certification, Patient, Product, Program, RuleSet, Status
from rems.program.programs import BUNDLED

from ..factories import PatientFactory, PharmacyFactory, PrescriberFactory, UserFactory, token_for

pytestmark = pytest.mark.django_db

REASON = "Training records found incomplete at the annual review"
TEMPLATES = Path(__file__).resolve().parents[2] / "rems" / "interfaces" / "templates" / "admin"


@pytest.fixture
def admin_user(db):
    return UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True)


@pytest.fixture
def browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def post_action(browser, url, action, objects, **fields):
    """What the intermediate page posts back: the action, the rows, `apply`, and the form's fields."""
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects], "apply": "yes", **fields}
    return browser.post(url, data)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def log_entries(action, obj):
    return ComplianceLogEntry.objects.filter(action=action, object_id=str(obj.pk))


# --- Who reaches the site ---------------------------------------------------------------------------------
@pytest.mark.parametrize("is_staff", [False, True])
def test_an_auditor_is_sent_to_the_login_page(program, is_staff):
    # An auditor created by user_create has no staff flag; one given it by mistake is still not an administrator.
    auditor = UserFactory(role=Role.AUDITOR, is_staff=is_staff)
    certification = certification_create(actor=None, program=program, prescriber=PrescriberFactory(),
                                         now=timezone.now())
    client = Client()
    client.force_login(auditor)

    for path in ("/admin/", "/admin/rems/certification/", "/admin/rems/compliancelogentry/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
    response = post_action(client, "/admin/rems/certification/", "certification_suspend", [certification],
                           reason=REASON)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    certification.refresh_from_db()
    assert certification.status == Status.ACTIVE
    assert not log_entries("certification.suspend", certification).exists()


def test_an_administrator_sees_every_list_and_no_add_link(browser, program):
    index = browser.get("/admin/")
    assert index.status_code == 200
    assert b"addlink" not in index.content and b"changelink" not in index.content
    for path in ("rems/program", "rems/product", "rems/ruleset", "rems/prescriber", "rems/pharmacy",
                 "rems/certification", "rems/patient", "rems/compliancelogentry", "dispensing/matchlock",
                 "accounts/user"):
        response = browser.get(f"/admin/{path}/")
        assert response.status_code == 200, path
        assert browser.get(f"/admin/{path}/add/").status_code == 403, path
    assert browser.get("/admin/auth/group/").status_code == 404


# --- Actions that ask for a reason ------------------------------------------------------------------------
def _certification(program, now, status=Status.ACTIVE):
    certification = certification_create(actor=None, program=program, prescriber=PrescriberFactory(), now=now)
    if status != Status.ACTIVE:
        verb = {Status.SUSPENDED: "suspend", Status.REVOKED: "revoke"}[status]
        certification_change_status(actor=None, certification=certification, action=verb, reason="set-up", now=now)
    return certification


def _patient(program, now, status=Status.ACTIVE):
    return PatientFactory(program=program, status=status)


def _lock(program, now, cleared=False):
    lock = MatchLock.objects.create(
        pharmacy=PharmacyFactory(), kind=MatchLockKind.BIRTH_DATE, authorization_number="PA1234567890",
        failures=3, first_failure_at=now, last_failure_at=now, locked_at=now,
    )
    if cleared:
        match_lock_clear(actor=None, lock=lock, reason="set-up", now=now)
    return lock


def _user(program, now, active=True):
    user = UserFactory(role=Role.PHARMACIST, pharmacy=PharmacyFactory())
    token_for(user, now)
    if not active:
        user_deactivate(actor=None, user=user, reason="set-up", now=now)
    return user


@dataclass
class Case:
    url: str
    action: str
    make: Callable  # (program, now) -> the row, in a state the action applies to
    state: Callable  # the row's state, read again from the database
    before: object
    after: object
    log_action: str


CASES = {
    "certification suspend": Case(
        "/admin/rems/certification/", "certification_suspend", _certification,
        lambda c: Certification.objects.get(pk=c.pk).status, Status.ACTIVE, Status.SUSPENDED,
        "certification.suspend"),
    "certification reinstate": Case(
        "/admin/rems/certification/", "certification_reinstate",
        lambda p, now: _certification(p, now, Status.SUSPENDED),
        lambda c: Certification.objects.get(pk=c.pk).status, Status.SUSPENDED, Status.ACTIVE,
        "certification.reinstate"),
    "certification revoke": Case(
        "/admin/rems/certification/", "certification_revoke", _certification,
        lambda c: Certification.objects.get(pk=c.pk).status, Status.ACTIVE, Status.REVOKED,
        "certification.revoke"),
    "patient suspend": Case(
        "/admin/rems/patient/", "patient_suspend", _patient,
        lambda p: Patient.objects.get(pk=p.pk).status, Status.ACTIVE, Status.SUSPENDED, "patient.suspend"),
    "patient reinstate": Case(
        "/admin/rems/patient/", "patient_reinstate", lambda p, now: _patient(p, now, Status.SUSPENDED),
        lambda p: Patient.objects.get(pk=p.pk).status, Status.SUSPENDED, Status.ACTIVE, "patient.reinstate"),
    "match lock clear": Case(
        "/admin/dispensing/matchlock/", "clear", _lock,
        lambda lock: MatchLock.objects.get(pk=lock.pk).cleared_at is not None, False, True,
        "security.match_lock_clear"),
    "user deactivate": Case(
        "/admin/accounts/user/", "deactivate", _user,
        lambda u: User.objects.get(pk=u.pk).is_active, True, False, "user.deactivate"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_action_asks_for_a_reason_then_changes_the_row_through_the_service(browser, admin_user, program, case):
    row = case.make(program, timezone.now())

    # The first post, from the list, only shows the intermediate page.
    page = browser.post(case.url, {"action": case.action, "_selected_action": [str(row.pk)], "index": "0"})
    assert page.status_code == 200
    assert "admin/rems/action_confirmation.html" in [t.name for t in page.templates]
    assert b'name="reason"' in page.content and f'value="{row.pk}"'.encode() in page.content
    assert case.state(row) == case.before

    response = post_action(browser, case.url, case.action, [row], reason=REASON)

    assert response.status_code == 302
    assert case.state(row) == case.after
    entry = log_entries(case.log_action, row).get()
    assert entry.detail["reason"] == REASON
    assert entry.actor_user_id == admin_user.pk and entry.actor_role == Role.ADMIN
    assert any("compliance log" in m for m in messages_of(response))


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_action_without_a_valid_reason_changes_nothing(browser, program, case, reason):
    row = case.make(program, timezone.now())
    entries = ComplianceLogEntry.objects.count()

    response = post_action(browser, case.url, case.action, [row], reason=reason)

    assert response.status_code == 200  # the intermediate page again, with the error
    assert b"errorlist" in response.content
    assert case.state(row) == case.before
    assert ComplianceLogEntry.objects.count() == entries


REFUSALS = {
    # name: (url, action, make a row the action is refused for, what the message says)
    "reinstate an active certification": (
        "/admin/rems/certification/", "certification_reinstate", _certification, "cannot be reinstated"),
    "suspend a revoked certification": (
        "/admin/rems/certification/", "certification_suspend",
        lambda p, now: _certification(p, now, Status.REVOKED), "A revoked certification cannot be"),
    "reinstate an active patient": (
        "/admin/rems/patient/", "patient_reinstate", _patient, "cannot be reinstated"),
    "clear a cleared lock": (
        "/admin/dispensing/matchlock/?state=all", "clear", lambda p, now: _lock(p, now, cleared=True),
        "already cleared"),
    "deactivate an inactive user": (
        "/admin/accounts/user/", "deactivate", lambda p, now: _user(p, now, active=False), "already deactivated"),
}


@pytest.mark.parametrize("url, action, make, says", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refused_transition_is_a_message_and_changes_nothing(browser, program, url, action, make, says):
    row = make(program, timezone.now())
    before = type(row).objects.filter(pk=row.pk).values().get()
    entries = ComplianceLogEntry.objects.count()

    response = post_action(browser, url, action, [row], reason=REASON)

    assert response.status_code == 302
    assert any(says in m for m in messages_of(response)), messages_of(response)
    assert type(row).objects.filter(pk=row.pk).values().get() == before
    assert ComplianceLogEntry.objects.count() == entries


def test_a_refused_row_does_not_stop_the_others(browser, program):
    now = timezone.now()
    active, suspended = _certification(program, now), _certification(program, now, Status.SUSPENDED)

    response = post_action(browser, "/admin/rems/certification/", "certification_reinstate", [active, suspended],
                           reason=REASON)

    shown = messages_of(response)
    assert any("cannot be reinstated" in m for m in shown) and any("Reinstated 1 certification;" in m for m in shown)
    assert Certification.objects.get(pk=suspended.pk).status == Status.ACTIVE
    assert not log_entries("certification.reinstate", active).exists()


def test_a_lock_cleared_meanwhile_is_no_longer_listed_and_nothing_changes(browser, program):
    lock = _lock(program, timezone.now())
    assert str(lock.pk).encode() in browser.get("/admin/dispensing/matchlock/").content
    match_lock_clear(actor=None, lock=lock, reason="cleared over the API", now=timezone.now())

    response = post_action(browser, "/admin/dispensing/matchlock/", "clear", [lock], reason=REASON)

    assert any("nothing was changed" in m for m in messages_of(response))
    assert log_entries("security.match_lock_clear", lock).count() == 1


def test_deactivating_a_user_revokes_their_keys_but_not_oneself(browser, admin_user, program):
    user = _user(program, timezone.now())
    post_action(browser, "/admin/accounts/user/", "deactivate", [user], reason=REASON)
    assert not ApiKey.objects.filter(user=user, revoked_at__isnull=True).exists()

    response = post_action(browser, "/admin/accounts/user/", "deactivate", [admin_user], reason=REASON)

    assert any("cannot deactivate yourself" in m for m in messages_of(response))
    assert User.objects.get(pk=admin_user.pk).is_active


def test_a_user_is_shown_without_the_password_hash(browser, program):
    user = _user(program, timezone.now())
    user.set_password("a-long-enough-passphrase-42")
    user.save()
    response = browser.get(f"/admin/accounts/user/{user.pk}/change/")
    assert response.status_code == 200
    assert user.username.encode() in response.content and user.password.encode() not in response.content


# --- Certifying a prescriber or a pharmacy ----------------------------------------------------------------
@pytest.mark.parametrize("url, factory, field", [
    ("/admin/rems/prescriber/", PrescriberFactory, "prescriber"),
    ("/admin/rems/pharmacy/", PharmacyFactory, "pharmacy"),
])
def test_certifying_in_a_program_asks_for_the_program_then_certifies(browser, admin_user, program, url, factory,
                                                                      field):
    party = factory()
    page = browser.post(url, {"action": "certify", "_selected_action": [str(party.pk)], "index": "0"})
    assert page.status_code == 200 and b'name="program"' in page.content
    assert not Certification.objects.filter(**{field: party}).exists()

    response = post_action(browser, url, "certify", [party], program=str(program.pk))

    certification = Certification.objects.get(**{field: party}, program=program)
    assert certification.status == Status.ACTIVE
    entry = log_entries("certification.create", certification).get()
    assert entry.actor_user_id == admin_user.pk
    assert any("Certified 1" in m for m in messages_of(response))

    # Certified already: refused, nothing new.
    response = post_action(browser, url, "certify", [party], program=str(program.pk))
    assert any("already has a active certification" in m for m in messages_of(response))
    assert Certification.objects.filter(**{field: party}).count() == 1


def test_certifying_without_a_program_changes_nothing(browser, program):
    prescriber = PrescriberFactory()
    response = post_action(browser, "/admin/rems/prescriber/", "certify", [prescriber], program="")
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not Certification.objects.filter(prescriber=prescriber).exists()


# --- No model form saves ----------------------------------------------------------------------------------
def test_the_certification_forms_are_refused(browser, program):
    certification = _certification(program, timezone.now())
    before = Certification.objects.filter(pk=certification.pk).values().get()
    base = f"/admin/rems/certification/{certification.pk}"

    assert browser.get(f"{base}/change/").status_code == 200  # shown read-only
    response = browser.post(f"{base}/change/", {"status": Status.REVOKED, "status_reason": "edited by hand",
                                                "_save": "Save"})
    assert response.status_code == 403
    assert browser.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert browser.post("/admin/rems/certification/add/", {"status": Status.ACTIVE}).status_code == 403
    assert Certification.objects.filter(pk=certification.pk).values().get() == before
    assert not ComplianceLogEntry.objects.filter(action__in=["certification.revoke"]).exists()


def test_the_compliance_log_cannot_be_changed_or_deleted(browser, program):
    entry = ComplianceLogEntry.objects.filter(action="rule_set.load").first()
    base = f"/admin/rems/compliancelogentry/{entry.pk}"
    assert browser.get(f"{base}/change/").status_code == 200
    assert browser.post(f"{base}/change/", {"outcome": "edited", "_save": "Save"}).status_code == 403
    assert browser.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    changelist = browser.get("/admin/rems/compliancelogentry/")
    assert b"delete_selected" not in changelist.content
    assert ComplianceLogEntry.objects.get(pk=entry.pk).outcome == "loaded"


# --- Rule sets --------------------------------------------------------------------------------------------
def _program_data():
    return json.loads((BUNDLED / "pomalidomide.json").read_text())


def _with_new_version(data, version="2099-01-01", effective_at="2099-01-01T00:00:00Z", **changes):
    new = copy.deepcopy(data["rule_sets"][0])
    new.update(version=version, effective_at=effective_at)
    new["parameters"].update(changes)
    data["rule_sets"].append(new)
    return data


def upload(browser, content, name="program.json"):
    return browser.post("/admin/rems/ruleset/upload/",
                        {"program_file": SimpleUploadedFile(name, content, content_type="application/json")})


def test_a_rule_set_is_shown_read_only_with_its_parameters_and_sources(browser, program):
    rule_set = RuleSet.objects.get(program=program)
    listing = browser.get("/admin/rems/ruleset/")
    assert b"Load a program file" in listing.content and b"2025-01-01" in listing.content

    detail = browser.get(f"/admin/rems/ruleset/{rule_set.pk}/change/")

    assert detail.status_code == 200
    assert b"prescriber_certification_months" in detail.content and b"POMALYST REMS document" in detail.content
    response = browser.post(f"/admin/rems/ruleset/{rule_set.pk}/change/", {"version": "edited", "_save": "Save"})
    assert response.status_code == 403
    assert browser.post(f"/admin/rems/ruleset/{rule_set.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RuleSet.objects.get(pk=rule_set.pk).version == "2025-01-01"


def test_uploading_a_new_version_loads_it_and_logs_it(browser, admin_user, program):
    assert browser.get("/admin/rems/ruleset/upload/").status_code == 200
    data = _with_new_version(_program_data(), max_days_supply=21)

    response = upload(browser, json.dumps(data).encode())

    assert response.status_code == 302
    rule_set = RuleSet.objects.get(program=program, version="2099-01-01")
    assert rule_set.parameters["max_days_supply"] == 21 and rule_set.sources == data["rule_sets"][0]["sources"]
    entry = log_entries("rule_set.load", rule_set).get()
    assert entry.actor_user_id == admin_user.pk and entry.rule_set == "pomalidomide@2099-01-01"
    assert any("Loaded pomalidomide@2099-01-01" in m for m in messages_of(response))

    # The same file again changes nothing.
    response = upload(browser, json.dumps(data).encode())
    assert any("already loaded" in m for m in messages_of(response))
    assert RuleSet.objects.filter(program=program).count() == 2


def _changed_existing():
    data = _program_data()
    data["rule_sets"][0]["parameters"]["max_days_supply"] = 35
    return json.dumps(data).encode()


def _valid_then_invalid():
    data = _with_new_version(_program_data())
    data = _with_new_version(data, version="2099-06-01", effective_at="2099-06-01T00:00:00Z")
    del data["rule_sets"][2]["parameters"]["max_days_supply"]
    return json.dumps(data).encode()


def _same_moment():
    return json.dumps(_with_new_version(_program_data(), effective_at="2025-01-01T00:00:00Z")).encode()


def _product_without_name():
    data = _with_new_version(_program_data())
    data["products"].append({"ndc": "59572-0505-21", "strength_mg": 5, "package_size": 21})
    return json.dumps(data).encode()


def _in_the_past():
    return json.dumps(_with_new_version(_program_data(), version="2026-02-01",
                                        effective_at="2026-02-01T00:00:00Z")).encode()


INVALID_FILES = {
    "not JSON": (lambda: b'{"slug": "pomalidomide",', "not valid JSON"),
    "not UTF-8": (lambda: b"\xff\xfe{}", "not valid JSON"),
    "NaN": (lambda: b'{"slug": NaN}', "not valid JSON"),
    "a list": (lambda: b"[1, 2]", "one JSON object"),
    "no slug": (lambda: b'{"name": "Pomalidomide REMS"}', "lacks"),
    "a loaded version changed": (_changed_existing, "rule sets never change"),
    "a valid version, then an invalid one": (_valid_then_invalid, "is invalid"),
    "two rule sets at the same moment": (_same_moment, "same moment"),
    "a new version in the past of a program in use": (_in_the_past, "in the past"),
    "a product without a name": (_product_without_name, "not a valid program file"),
}


@pytest.mark.parametrize("content, says", INVALID_FILES.values(), ids=INVALID_FILES.keys())
def test_an_invalid_or_refused_program_file_is_an_error_and_loads_nothing(browser, program, content, says):
    counts = (Program.objects.count(), Product.objects.count(), RuleSet.objects.count(),
              ComplianceLogEntry.objects.count())

    response = upload(browser, content())

    assert response.status_code == 200
    assert says in response.content.decode(), response.content.decode()
    assert b"errorlist" in response.content
    assert (Program.objects.count(), Product.objects.count(), RuleSet.objects.count(),
            ComplianceLogEntry.objects.count()) == counts


def test_uploading_without_a_file_is_an_error(browser, program):
    response = browser.post("/admin/rems/ruleset/upload/", {})
    assert response.status_code == 200 and b"errorlist" in response.content


def test_only_an_administrator_may_upload(program):
    auditor = UserFactory(role=Role.AUDITOR, is_staff=True)
    client = Client()
    client.force_login(auditor)
    data = _with_new_version(_program_data())
    response = upload(client, json.dumps(data).encode())
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not RuleSet.objects.filter(version="2099-01-01").exists()


# --- Content-Security-Policy ------------------------------------------------------------------------------
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.IGNORECASE)


def test_the_added_templates_have_no_inline_script_or_style():
    templates = list(TEMPLATES.rglob("*.html"))
    assert templates
    for template in templates:
        text = template.read_text()
        assert not INLINE_SCRIPT.search(text) and not INLINE_STYLE.search(text), template


def test_the_added_pages_render_no_inline_script(browser, program):
    certification = _certification(program, timezone.now() - timedelta(days=1))
    pages = [
        browser.post("/admin/rems/certification/", {"action": "certification_suspend",
                                                     "_selected_action": [str(certification.pk)], "index": "0"}),
        browser.get("/admin/rems/ruleset/upload/"),
        browser.get("/admin/rems/ruleset/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert not INLINE_SCRIPT.search(page.content.decode())


def test_an_ehr_is_registered_on_the_admin_site_through_the_same_service(browser, admin_user, db):
    import json as _json

    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    from rems.program.models import CdsClient

    assert browser.get("/admin/rems/cdsclient/").status_code == 200
    assert b"Register an EHR" in browser.get("/admin/rems/cdsclient/").content
    assert browser.get("/admin/rems/cdsclient/register/").status_code == 200
    public = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key())
    private = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()))

    refused = browser.post("/admin/rems/cdsclient/register/", {"issuer": "https://ehr.example", "jwk": private})
    assert refused.status_code == 200 and b"private parts" in refused.content and not CdsClient.objects.exists()
    assert b"errorlist" in browser.post("/admin/rems/cdsclient/register/",
                                        {"issuer": "https://ehr.example", "jwk": "{not json"}).content

    response = browser.post("/admin/rems/cdsclient/register/", {"issuer": "https://ehr.example", "jwk": public})

    assert response.status_code == 302
    client = CdsClient.objects.get()
    assert client.algorithm == "ES384" and client.jwk == _json.loads(public) and client.registered_by == admin_user
    assert log_entries("cds_client.register", client).get().actor_user_id == admin_user.pk
    assert browser.post(f"/admin/rems/cdsclient/{client.pk}/delete/", {"post": "yes"}).status_code == 403


def test_an_ehr_registration_is_retired_with_a_reason_on_the_admin_site(browser, admin_user, db):
    from rems.program.models import CdsClient

    client = CdsClient.objects.create(issuer="https://ehr.example", jwk={}, algorithm="ES384",
                                      registered_at=timezone.now())
    response = post_action(browser, "/admin/rems/cdsclient/", "cds_client_retire", [client], reason="key leaked")
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.retired_at is not None and client.retired_reason == "key leaked"
    assert log_entries("cds_client.retire", client).get().actor_user_id == admin_user.pk
