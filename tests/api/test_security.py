"""Keys, suspended parties, guessing, throttling, logins and security events."""

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey, Role
from dispensing.models import MatchLock
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import Certification, Notification

from ..factories import UserFactory
from .flows import enroll, prescribe, request_rda
from .test_denials import approved_authorization

pytestmark = pytest.mark.django_db


def test_a_revoked_key_is_refused_on_the_next_request(api, world):
    token = world["ours"].tokens["pharmacist"]
    assert api.get("/api/v1/dispense-authorizations/", as_=token)[0] == 200
    key = ApiKey.objects.get(user=world["ours"].users["pharmacist"])

    assert api.post(f"/api/v1/keys/{key.pk}/revoke", as_=world["admin"])[0] == 200

    status, body = api.get("/api/v1/dispense-authorizations/", as_=token)
    assert status == 401 and "revoked" in body["detail"]
    assert ComplianceLogEntry.objects.filter(action="api_key.revoke", object_id=str(key.pk)).exists()
    assert ComplianceLogEntry.objects.filter(action="security.auth_failed").exists()


def test_two_keys_overlap_during_a_rotation(api, world):
    user = world["ours"].users["pharmacist"]
    old_token = world["ours"].tokens["pharmacist"]
    status, new = api.post(f"/api/v1/users/{user.pk}/keys/", {"label": "rotation"}, as_=world["admin"])
    assert status == 201
    assert api.get("/api/v1/programs/", as_=old_token)[0] == 200
    assert api.get("/api/v1/programs/", as_=new["token"])[0] == 200
    old_key = ApiKey.objects.filter(user=user).exclude(pk=new["id"]).get()
    api.post(f"/api/v1/keys/{old_key.pk}/revoke", as_=world["admin"])
    assert api.get("/api/v1/programs/", as_=old_token)[0] == 401
    assert api.get("/api/v1/programs/", as_=new["token"])[0] == 200


def test_an_expired_key_is_refused(api, world):
    key = ApiKey.objects.get(user=world["ours"].users["pharmacist"])
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())
    status, body = api.get("/api/v1/programs/", as_=world["ours"].tokens["pharmacist"])
    assert status == 401 and "expired" in body["detail"]


def test_a_suspended_pharmacys_staff_can_no_longer_obtain_an_rda(api, world):
    ours = world["ours"]
    _, number = approved_authorization(api, ours)
    certification = Certification.objects.get(pharmacy=ours.pharmacy)
    assert api.post(f"/api/v1/certifications/{certification.pk}/suspend", {"reason": "inspection"},
                    as_=world["admin"])[0] == 200

    status, decision = request_rda(api, ours.tokens["pharmacist"], number)

    assert status == 422 and "PHARMACY_CERTIFIED" in [c["code"] for c in decision["checks"] if not c["passed"]]
    # and everything else acting for the pharmacy is refused at once
    status, body = api.get("/api/v1/dispense-authorizations/", as_=ours.tokens["pharmacist"])
    assert status == 403 and "suspended" in body["detail"]
    assert ComplianceLogEntry.objects.filter(action="security.permission_refused",
                                             pharmacy_id=ours.pharmacy.pk).exists()


def test_a_revoked_prescribers_office_loses_access(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    certification = Certification.objects.get(prescriber=ours.prescriber)
    api.post(f"/api/v1/certifications/{certification.pk}/revoke", {"reason": "fraud"}, as_=world["admin"])

    assert api.get(f"/api/v1/patients/{patient_id}/", as_=ours.tokens["prescriber"])[0] == 403
    assert api.get(f"/api/v1/patients/{patient_id}/", as_=ours.tokens["delegate"])[0] == 403
    status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    assert status == 422 and decision["status"] == "denied"


def test_wrong_birth_dates_lock_the_number_for_the_pharmacy_until_cleared(api, world, settings):
    settings.REMS_BIRTH_DATE_FAILURES = 3
    ours = world["ours"]
    _, number = approved_authorization(api, ours)
    for _ in range(3):
        status, decision = request_rda(api, ours.tokens["pharmacist"], number, dob="1970-01-01")
        assert status == 422 and "PATIENT_DOB_MATCH" in [c["code"] for c in decision["checks"] if not c["passed"]]

    status, decision = request_rda(api, ours.tokens["pharmacist"], number)  # the right birth date

    assert status == 422
    assert [c["code"] for c in decision["checks"]] == ["MATCH_ATTEMPTS_LIMIT"]
    lock = MatchLock.objects.get(pharmacy=ours.pharmacy, authorization_number=number)
    assert lock.locked_at and lock.failures == 3
    assert ComplianceLogEntry.objects.filter(action="dispense_authorization.request",
                                             detail__authorization_number=number).count() == 4
    assert ComplianceLogEntry.objects.filter(action="security.match_lock", object_id=str(lock.pk)).exists()
    # shown to the program administrator
    status, locks = api.get("/api/v1/match-locks/?locked=true", as_=world["admin"])
    assert status == 200 and [x["id"] for x in locks["results"]] == [lock.pk]
    assert Notification.objects.filter(kind="match_lock", recipient=world["admin_user"]).exists()
    # another pharmacy is not held up by this pharmacy's lock
    status, other = request_rda(api, world["theirs"].tokens["pharmacist"], number, ndc="59572-0503-21")
    assert "PRODUCT_MATCH" in [c["code"] for c in other["checks"] if not c["passed"]]

    assert api.post(f"/api/v1/match-locks/{lock.pk}/clear", {"reason": "verified"},
                    as_=world["admin"])[0] == 200
    status, decision = request_rda(api, ours.tokens["pharmacist"], number)
    assert status == 201, decision


def test_unknown_numbers_lock_the_pharmacy(api, world, settings):
    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

    settings.REMS_UNKNOWN_NUMBER_FAILURES = 2
    ours = world["ours"]
    _, real = approved_authorization(api, ours)
    for _ in range(2):
        request_rda(api, ours.tokens["pharmacist"], authorization_number_new(PRESCRIPTION_PREFIX))

    status, decision = request_rda(api, ours.tokens["pharmacist"], real)

    assert status == 422 and [c["code"] for c in decision["checks"]] == ["MATCH_ATTEMPTS_LIMIT"]


def test_dispense_requests_are_throttled_per_key(api, world, settings, same_minute):
    settings.REMS_DISPENSE_RATE_PER_KEY = 3
    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

    statuses = [request_rda(api, world["ours"].tokens["pharmacist"], authorization_number_new(PRESCRIPTION_PREFIX))[0]
                for _ in range(4)]

    assert statuses[:3] == [422, 422, 422] and statuses[3] == 429
    assert api.last["Retry-After"]
    # the pharmacy's other key has its own allowance
    assert request_rda(api, world["ours"].tokens["pharmacy_manager"],
                       authorization_number_new(PRESCRIPTION_PREFIX))[0] == 422


def test_dispense_requests_are_throttled_per_pharmacy(api, world, settings, same_minute):
    settings.REMS_DISPENSE_RATE_PER_PHARMACY = 2
    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

    ours = world["ours"]
    first = request_rda(api, ours.tokens["pharmacist"], authorization_number_new(PRESCRIPTION_PREFIX))[0]
    second = request_rda(api, ours.tokens["pharmacy_manager"], authorization_number_new(PRESCRIPTION_PREFIX))[0]
    third = request_rda(api, ours.tokens["pharmacist"], authorization_number_new(PRESCRIPTION_PREFIX))[0]

    assert (first, second, third) == (422, 422, 429)


def test_permission_refusals_are_logged(api, world):
    assert prescribe(api, world["ours"].tokens["delegate"], "00000000-0000-0000-0000-000000000000")[0] == 403
    entry = ComplianceLogEntry.objects.get(action="security.permission_refused")
    assert entry.actor_role == "delegate" and entry.object_id == "/api/v1/prescriptions/"


def test_a_pharmacy_manager_manages_its_own_staff_only(api, world):
    ours, theirs = world["ours"], world["theirs"]
    manager = ours.tokens["pharmacy_manager"]
    status, user = api.post("/api/v1/users/", {"username": "tech-1", "role": "pharmacist"}, as_=manager)
    assert status == 201 and user["pharmacy"] == str(ours.pharmacy.pk) and user["token"]
    assert api.post("/api/v1/users/", {"username": "boss", "role": "admin"}, as_=manager)[0] == 403
    assert api.post(f"/api/v1/users/{theirs.users['pharmacist'].pk}/keys/", {}, as_=manager)[0] == 404
    status, listing = api.get("/api/v1/users/", as_=manager)
    assert {u["pharmacy"] for u in listing["results"]} == {str(ours.pharmacy.pk)}
    assert api.post(f"/api/v1/users/{user['id']}/deactivate", {"reason": "left"}, as_=manager)[0] == 200
    assert api.get("/api/v1/dispense-authorizations/", as_=user["token"])[0] == 401


@pytest.mark.parametrize("path", ["/admin/login/"])
def test_logins_lock_out_after_repeated_failures(world, settings, path):
    settings.REMS_LOGIN_FAILURES = 3
    admin = UserFactory(role=Role.ADMIN, username="site-admin", is_staff=True, is_superuser=True)
    admin.set_password("a-long-enough-passphrase-42")
    admin.save()
    browser = Client()
    for _ in range(3):
        browser.post(path, {"username": "site-admin", "password": "wrong", "next": "/admin/"})
    response = browser.post(path, {"username": "site-admin", "password": "a-long-enough-passphrase-42",
                                   "next": "/admin/"})
    assert response.status_code == 200  # the form again: the right password is refused while locked
    assert ComplianceLogEntry.objects.filter(action="security.login_failed").count() == 2
    assert ComplianceLogEntry.objects.filter(action="security.lockout").count() == 1
    assert ComplianceLogEntry.objects.filter(action="security.login_refused").count() == 1


@pytest.mark.parametrize("path", ["/admin/login/", "/login"])
def test_made_up_usernames_add_one_entry_a_minute_and_no_row_each(world, same_minute, path):
    from accounts.models import LoginState, RequestCounter

    entries, states, counters = (ComplianceLogEntry.objects.count(), LoginState.objects.count(),
                                 RequestCounter.objects.count())
    browser = Client()
    for i in range(60):
        response = browser.post(path, {"username": f"nobody-{i}", "password": "whatever-it-is-42", "next": "/"})
        assert response.status_code == 200  # the form again, as for a wrong password

    assert ComplianceLogEntry.objects.count() - entries == 1
    assert ComplianceLogEntry.objects.filter(action="security.login_failed", detail__reason="unknown username",
                                             object_id="").count() == 1
    assert LoginState.objects.count() == states
    assert RequestCounter.objects.count() - counters <= 1  # one counter for the minute, whatever the names


def test_a_locked_username_is_logged_once_a_minute_however_often_it_is_tried(world, settings, same_minute):
    settings.REMS_LOGIN_FAILURES = 2
    user = UserFactory(role=Role.ADMIN, username="locked-admin", is_staff=True)
    user.set_password("a-long-enough-passphrase-42")
    user.save()
    browser = Client()
    for _ in range(2 + 20):
        browser.post("/admin/login/", {"username": "locked-admin", "password": "wrong", "next": "/admin/"})
    assert ComplianceLogEntry.objects.filter(action="security.login_refused").count() == 1


def test_a_good_login_works_and_is_logged(world):
    admin = UserFactory(role=Role.ADMIN, username="site-admin-2", is_staff=True, is_superuser=True)
    admin.set_password("a-long-enough-passphrase-42")
    admin.save()
    response = Client().post("/admin/login/", {"username": "site-admin-2", "password": "a-long-enough-passphrase-42",
                                               "next": "/admin/"})
    assert response.status_code == 302
    assert ComplianceLogEntry.objects.filter(action="security.login", actor_user_id=admin.pk).exists()
