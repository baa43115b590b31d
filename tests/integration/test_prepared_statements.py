"""The hot paths' prepared statements (`rems/prepared.py`) keep nothing but the statement: a key revoked or a
user deactivated by another process is refused on the very next lookup, even on a connection that has the lookup
prepared, and a rule set loaded by another process is in force at its moment for a process that holds the one
before. Real connections, committed transactions."""

import copy
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import ApiKey, User
from dispensing import prescriptions
from rems.program import programs
from rems.program.models import Program, RuleSet
from rems.interfaces.keys import KeyRefused, key_user
from rems.program.selectors import rule_set_keys_held
from tests.conftest import Api
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _elsewhere(work):
    """Run `work` on another connection, committed, as another process would."""
    def run():
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def _prepared(name_fragment):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{name_fragment}%"])
        return cursor.fetchone()[0]


def test_a_key_revoked_elsewhere_is_refused_on_the_next_lookup_of_a_prepared_connection(world):
    token = world["ours"].tokens["pharmacist"]
    for _ in range(3):
        user, _ = key_user(token, timezone.now())
    assert user == world["ours"].users["pharmacist"]
    assert _prepared("accounts_apikey") == 1  # one statement, prepared on this connection
    key = ApiKey.objects.get(user=user)

    _elsewhere(lambda: ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now()))

    with pytest.raises(KeyRefused, match="revoked"):
        key_user(token, timezone.now())


def test_a_user_deactivated_elsewhere_is_refused_on_the_next_request(world):
    api, token = Api(), world["ours"].tokens["prescriber"]
    assert api.get("/api/v1/programs/", as_=token)[0] == 200

    _elsewhere(lambda: User.objects.filter(pk=world["ours"].users["prescriber"].pk).update(is_active=False))

    assert api.get("/api/v1/programs/", as_=token)[0] == 401


def test_a_rule_set_loaded_elsewhere_is_in_force_at_its_moment_though_the_one_before_is_held(world):
    ours = world["ours"]
    program = Program.objects.get(slug="pomalidomide")
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    now = timezone.now()
    decision, _, prescription = prescriptions.prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28, now=now)
    assert decision.approved and decision.rule_set == "pomalidomide@2025-01-01"
    assert rule_set_keys_held()
    prescriptions.prescription_cancel(actor=ours.users["prescriber"], prescription=prescription, reason="test",
                                      now=now)
    parameters = copy.deepcopy(RuleSet.objects.filter(program=program).latest("effective_at").parameters)
    parameters["max_days_supply"] = 21
    effective_at = timezone.now() + timedelta(seconds=1)
    _elsewhere(lambda: programs.rule_set_load(actor=world["admin_user"], program=program, version="later",
                                              effective_at=effective_at, parameters=parameters, sources={},
                                              now=timezone.now()))

    before, _, issued = prescriptions.prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28,
        now=effective_at - timedelta(microseconds=1))
    prescriptions.prescription_cancel(actor=ours.users["prescriber"], prescription=issued, reason="test",
                                      now=effective_at - timedelta(microseconds=1))
    after, _, _ = prescriptions.prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28,
        now=effective_at)

    assert before.approved and before.rule_set == "pomalidomide@2025-01-01"
    assert not after.approved and after.rule_set == "pomalidomide@later"
    assert after.failed_codes == ["DAYS_SUPPLY_LIMIT"]
