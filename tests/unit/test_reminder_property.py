"""Over many generated histories, in every program and rule set: each reminder is due at exactly the first
moment the check it reminds of fails (it passes one microsecond before, it fails at that moment, and at no
earlier moment), and the patient list says the same. Pure: the bundled rule sets, no database."""

import json
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from rems.core import gates, outlook, reminders, timing
from rems.core.gates import (
    AuthorizationFact,
    CertificationFact,
    DispenseFact,
    OpenPrescriptionFact,
    PatientFact,
    PatientHistory,
    PregnancyTestFact,
    SurveyFact,
)
from rems.core.rules import RuleParameters
from rems.core.timing import RESOLUTION
from rems.program.programs import BUNDLED

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
RULE_SETS = [
    (f"{path.stem}@{rule_set['version']}", RuleParameters.from_dict(rule_set["parameters"]))
    for path in sorted(BUNDLED.glob("*.json"))
    for rule_set in json.loads(path.read_text())["rule_sets"]
]
BORN = {"adult": date(1980, 3, 1), "child": date(2014, 3, 1), "any": date(1995, 3, 1)}
SETTINGS = ("laboratory", "medical_office", "home")
EXAMPLES = settings(max_examples=400, deadline=None)


def moment_before(draw, moment, most_days):
    """A moment up to `most_days` before `moment`, to the microsecond."""
    return moment - timedelta(days=draw(st.integers(0, most_days)), seconds=draw(st.integers(0, 86399)),
                              microseconds=draw(st.integers(0, 999_999)))


def time_zones(params):
    """Where the patient is tested: one of the program's time zones, or not given."""
    return st.sampled_from(["", *(zone.key for zone in params.calendar_day_time_zones)])


@st.composite
def situations(draw):
    """A patient in therapy under one of the rule sets, with a generated history."""
    label, params = draw(st.sampled_from(RULE_SETS))
    name = draw(st.sampled_from(sorted(params.risk_categories)))
    category = params.category(name)
    started = moment_before(draw, NOW, 400)
    # half of the time a supply dispensed in the last week, so that the testing interval, not the next
    # prescription, is what comes first
    recent_fill = draw(st.booleans())
    dispensed = max(started, moment_before(draw, NOW, 7 if recent_fill else max(0, (NOW - started).days)))
    tests = ()
    if category.can_get_pregnant:
        tests = tuple(
            PregnancyTestFact(collected_at=moment_before(draw, NOW, 60), result="negative",
                              sensitivity_miu_ml=draw(st.sampled_from([10, 25, 50])),
                              setting=draw(st.sampled_from(SETTINGS)))
            for _ in range(draw(st.integers(1, 4)))
        )
        tests = tuple(sorted(tests, key=lambda t: t.collected_at, reverse=True))
    survey = SurveyFact(moment_before(draw, NOW, 400)) if draw(st.booleans()) else None
    previous = dispensed - timedelta(hours=draw(st.integers(1, 72))) if draw(st.booleans()) else None
    patient = PatientFact(
        status="active", status_reason="", risk_category=name, date_of_birth=BORN[category.age],
        agreement_signed_on=started.date() - timedelta(days=1), irregular_cycles=draw(st.booleans()),
        therapy_started_at=started, time_zone=draw(time_zones(params)),
    )
    history = PatientHistory(
        tests=tests, latest_survey=survey, previous_prescription_issued_at=previous,
        last_dispense=DispenseFact(dispensed_at=dispensed, days_supply=params.max_days_supply if recent_fill
                                   else draw(st.integers(1, params.max_days_supply))),
    )
    return label, params, patient, history


def _code(checks, code):
    return next(c for c in checks if c.code == code)


def blocked(due, patient, history, params, moment):
    """Whether, at `moment`, the check `due` reminds of stops the next prescription."""
    def fails(code):
        return not _code(gates.check_pregnancy_tests(patient, history, params, moment), code).passed

    next_fill_passes = gates.check_next_fill(history, params, moment).passed
    if due.kind == "pregnancy_test":
        # whichever test rule binds first: the testing interval, or a test recent enough for the next prescription
        interval = params.testing_interval is not None and fails("PREGNANCY_TEST_INTERVAL")
        return interval or (fails("PREGNANCY_TEST_RECENT") and next_fill_passes)
    if due.kind == "survey":
        survey_fails = not gates.check_survey(patient, history, params, moment).passed
        every_prescription = params.surveys[patient.risk_category].every is None
        return survey_fails and (next_fill_passes or not every_prescription)
    raise AssertionError(f"no check for {due.kind}")


def outlook_item(kind, patient, history, params, moment):
    items = {i.kind: i for i in outlook.patient_outlook(patient=patient, history=history, params=params, now=moment)}
    return items.get(kind)


@EXAMPLES
@given(situation=situations(), earlier=st.integers(1, 90 * 86400 * 10**6))
def test_each_reminder_is_due_at_the_first_moment_its_check_fails_and_the_patient_list_agrees(situation, earlier):
    label, params, patient, history = situation
    dues = [due for due in reminders.patient_dues(patient=patient, history=history, params=params, now=NOW)
            if due.check]  # the clinical reminders (blood counts) are no gate
    for due in dues:
        where = (label, due)
        assert not blocked(due, patient, history, params, due.due_at - RESOLUTION), where
        assert not blocked(due, patient, history, params, due.due_at - timedelta(microseconds=earlier)), where
        assert blocked(due, patient, history, params, due.due_at), where
        # the named check is the one that fails
        if due.check in ("PREGNANCY_TEST_INTERVAL", "PREGNANCY_TEST_RECENT"):
            checks = gates.check_pregnancy_tests(patient, history, params, due.due_at)
        else:
            checks = [gates.check_survey(patient, history, params, due.due_at)]
        assert not _code(checks, due.check).passed, where

        item = outlook_item(due.kind, patient, history, params, due.due_at - RESOLUTION)
        assert item.due_at == due.due_at and item.state in (outlook.OK, outlook.DUE_SOON), (where, item)
        item = outlook_item(due.kind, patient, history, params, due.due_at)
        assert item.state in (outlook.OVERDUE, outlook.MISSING), (where, item)


@st.composite
def authorizations(draw):
    label, params = draw(st.sampled_from(RULE_SETS))
    name = draw(st.sampled_from(sorted(params.risk_categories)))
    issued = moment_before(draw, NOW, 30)
    patient = PatientFact(status="active", status_reason="", risk_category=name, date_of_birth=date(1980, 1, 1),
                          agreement_signed_on=date(2026, 1, 1), irregular_cycles=False, therapy_started_at=None,
                          time_zone=draw(time_zones(params)))
    expires_at = timing.authorization_expires_at(
        params, patient, issued_at=issued, latest_negative_at=moment_before(draw, issued, 10),
        counseling_at=moment_before(draw, issued, 10))
    return label, params, name, expires_at


@EXAMPLES
@given(authorization=authorizations())
def test_an_authorization_is_due_to_lapse_at_the_first_moment_the_counter_refuses_it(authorization):
    label, params, name, expires_at = authorization
    fact = AuthorizationFact(status="issued", expires_at=expires_at, ndc="x", quantity=1, days_supply=1,
                             risk_category=name)

    def counter_refuses(moment):
        return not _code(gates.check_authorization(fact, params, moment), "AUTHORIZATION_NOT_EXPIRED").passed

    assert not counter_refuses(expires_at - RESOLUTION) and counter_refuses(expires_at), label
    history = PatientHistory(open_prescription=OpenPrescriptionFact("RX", expires_at))
    patient = PatientFact(status="active", status_reason="", risk_category=name, date_of_birth=date(1980, 1, 1),
                          agreement_signed_on=date(2026, 1, 1), irregular_cycles=False, therapy_started_at=None)
    assert outlook_item("authorization", patient, history, params, expires_at - RESOLUTION).due_at == expires_at
    assert outlook_item("authorization", patient, history, params, expires_at) is None


@EXAMPLES
@given(rule_set=st.sampled_from(RULE_SETS), party=st.sampled_from(["prescriber", "pharmacy"]),
       certified_days_ago=st.integers(0, 800))
def test_a_certification_ends_at_the_first_moment_its_check_fails(rule_set, party, certified_days_ago):
    label, params = rule_set
    expires_at = NOW - timedelta(days=certified_days_ago) + params.certification_period(party)
    certification = CertificationFact(status="active", expires_at=expires_at)
    code = f"{party.upper()}_CERTIFIED"
    assert gates.check_certified(code, party, certification, expires_at - RESOLUTION).passed, label
    assert not gates.check_certified(code, party, certification, expires_at).passed, label
