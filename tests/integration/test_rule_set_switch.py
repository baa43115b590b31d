"""A new rule set takes effect at its `effective_at`, to the microsecond, under concurrent decisions: each
decision is made under exactly one rule set, the one in force at its moment, and names it. Real threads, real
PostgreSQL connections, committed transactions."""

import copy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from dispensing import prescriptions
from rems.compliance_log.models import ComplianceLogEntry
from rems.program import programs
from rems.program.models import Program, RuleSet
from rems.program.selectors import rule_set_for_decision
from rems.program.validation import InvalidValue
from tests.api.flows import enroll, prescribe
from tests.conftest import POMALIDOMIDE_4MG, Api
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 6


def new_parameters(program):
    """The rule set in force with one visible change: at most 21 days of supply, so that a decision for 28 days
    is approved under the old rules and denied under the new."""
    parameters = copy.deepcopy(RuleSet.objects.filter(program=program).latest("effective_at").parameters)
    parameters["max_days_supply"] = 21
    return parameters


def test_decisions_racing_a_rule_set_loaded_over_the_api_each_name_the_rule_set_of_their_moment(world):
    ours = world["ours"]
    program = Program.objects.get(slug="pomalidomide")
    setup = Api()
    patients = [enroll(setup, ours.tokens["prescriber"], risk_category="FNRP_ADULT") for _ in range(THREADS)]
    stop = threading.Event()

    def decide(patient_id):
        api = Api()
        try:
            while not stop.is_set():
                status, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
                assert status in (201, 422), decision
                if status == 201:  # free the patient for the next decision
                    api.post(f"/api/v1/prescriptions/{decision['prescription_id']}/cancel", {"reason": "test"},
                             as_=ours.tokens["prescriber"])
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        running = [pool.submit(decide, patient_id) for patient_id in patients]
        time.sleep(0.5)
        effective_at = timezone.now() + timedelta(seconds=1)
        status, loaded = Api().post(
            "/api/v1/programs/pomalidomide/rule-sets/",
            {"version": "switch", "effective_at": effective_at.isoformat(), "parameters": new_parameters(program),
             "sources": {"max_days_supply": "a test"}},
            as_=world["admin"],
        )
        assert status == 201, loaded
        time.sleep(max(0.0, (effective_at - timezone.now()).total_seconds()) + 1.0)
        stop.set()
        for future in running:
            future.result()

    decisions = list(ComplianceLogEntry.objects.filter(action="prescription.authorize")
                     .values("occurred_at", "rule_set", "checks"))
    before = [d for d in decisions if d["occurred_at"] < effective_at]
    after = [d for d in decisions if d["occurred_at"] >= effective_at]
    assert len(before) > THREADS and len(after) > THREADS, (len(before), len(after))
    assert {d["rule_set"] for d in before} == {"pomalidomide@2025-01-01"}
    assert {d["rule_set"] for d in after} == {"pomalidomide@switch"}
    # and each was decided under the rules it names
    days_supply = {d["rule_set"]: {c["passed"] for c in d["checks"] if c["code"] == "DAYS_SUPPLY_LIMIT"}
                   for d in decisions}
    assert days_supply == {"pomalidomide@2025-01-01": {True}, "pomalidomide@switch": {False}}


def _load(program, effective_at, version):
    return programs.rule_set_load(actor=None, program=program, version=version, effective_at=effective_at,
                                  parameters=new_parameters(program), sources={}, now=timezone.now())


def test_a_decision_past_effective_at_waits_for_the_load_in_flight_and_is_made_under_it(world):
    ours = world["ours"]
    program = Program.objects.get(slug="pomalidomide")
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    effective_at = timezone.now() + timedelta(milliseconds=300)
    loaded = threading.Event()

    def load_and_hold():
        try:
            with transaction.atomic():
                _load(program, effective_at, "held")
                loaded.set()
                # still uncommitted when its moment comes
                time.sleep(max(0.0, (effective_at - timezone.now()).total_seconds()) + 0.5)
        finally:
            connection.close()

    def decide_after_effective_at():
        try:
            loaded.wait(10)
            time.sleep(max(0.0, (effective_at - timezone.now()).total_seconds()) + 0.05)
            decision, _, _ = prescriptions.prescription_authorize(
                actor=ours.users["prescriber"], patient=patient, ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28,
                now=timezone.now())
            return decision
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        loader = pool.submit(load_and_hold)
        decision = pool.submit(decide_after_effective_at).result(timeout=30)
        loader.result(timeout=30)

    assert decision.rule_set == "pomalidomide@held"
    assert "DAYS_SUPPLY_LIMIT" in decision.failed_codes


def test_a_load_waiting_on_a_decision_in_flight_past_its_effective_at_is_refused(world):
    program = Program.objects.get(slug="pomalidomide")
    effective_at = timezone.now() + timedelta(milliseconds=300)
    reading = threading.Event()

    def decision_in_flight():
        try:
            with transaction.atomic():
                rule_set = rule_set_for_decision(program=program, now=timezone.now())
                reading.set()
                time.sleep(max(0.0, (effective_at - timezone.now()).total_seconds()) + 0.3)
                return rule_set.label
        finally:
            connection.close()

    def load():
        try:
            reading.wait(10)
            _load(program, effective_at, "late")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        in_flight = pool.submit(decision_in_flight)
        loading = pool.submit(load)
        assert in_flight.result(timeout=30) == "pomalidomide@2025-01-01"
        with pytest.raises(InvalidValue, match="in the past"):
            loading.result(timeout=30)

    assert not RuleSet.objects.filter(version="late").exists()
    assert not ComplianceLogEntry.objects.filter(action="rule_set.load", rule_set="pomalidomide@late").exists()


def test_the_rule_set_endpoint_refuses_the_past_a_known_version_and_unknown_parameters(api, world):
    program = Program.objects.get(slug="pomalidomide")
    body = {"version": "v2", "effective_at": (timezone.now() + timedelta(days=1)).isoformat(),
            "parameters": new_parameters(program), "sources": {}}
    path = "/api/v1/programs/pomalidomide/rule-sets/"
    admin = world["admin"]

    assert api.post(path, {**body, "effective_at": (timezone.now() - timedelta(seconds=1)).isoformat()},
                    as_=admin)[0] == 400
    assert api.post(path, {**body, "parameters": {**body["parameters"], "max_refills": 2}}, as_=admin)[0] == 400
    missing = dict(body["parameters"])
    del missing["max_days_supply"]
    assert api.post(path, {**body, "parameters": missing}, as_=admin)[0] == 400
    status, created = api.post(path, body, as_=admin)
    assert status == 201 and created["label"] == "pomalidomide@v2"
    assert api.post(path, {**body, "effective_at": (timezone.now() + timedelta(days=2)).isoformat()},
                    as_=admin)[0] == 409
    assert api.post("/api/v1/programs/nothing/rule-sets/", body, as_=admin)[0] == 404
    assert api.post(path, body, as_=world["ours"].tokens["prescriber"])[0] == 403
    entry = ComplianceLogEntry.objects.get(action="rule_set.load", rule_set="pomalidomide@v2")
    assert json.loads(json.dumps(entry.detail))["parameters"]["max_days_supply"] == 21
