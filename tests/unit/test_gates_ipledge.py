"""iPLEDGE on the same engine, at its boundaries, under the rule set in force at the clock: the one from
2021-12-13 before 2026-08-08, the modification after. Pure: the bundled file's parameters, no database."""

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from rems.core import gates
from rems.core.gates import (
    AttestationFact,
    PatientHistory,
    PregnancyTestFact,
    PrescriptionFacts,
    PrescriptionRequestFact,
    RuleSetFact,
    SurveyFact,
)
from rems.core.rules import RuleParameters
from rems.core.timing import RESOLUTION
from rems.program.programs import BUNDLED

from .helpers import certification, patient

FILE = json.loads((BUNDLED / "isotretinoin.json").read_text())
BEFORE = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)  # the 2021 rule set in force
AFTER = datetime(2026, 9, 15, 12, 0, tzinfo=timezone.utc)  # the 2026 modification in force
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
NDC = "00245-0571-01"


def rule_set_at(now):
    """The rule set in force at `now`, chosen as the service chooses it: the latest effective at or before."""
    in_force = max((rs for rs in FILE["rule_sets"] if datetime.fromisoformat(rs["effective_at"]) <= now),
                   key=lambda rs: datetime.fromisoformat(rs["effective_at"]))
    return RuleSetFact(label=f"isotretinoin@{in_force['version']}",
                       parameters=RuleParameters.from_dict(in_force["parameters"]))


def test_the_clock_picks_the_rule_set():
    assert rule_set_at(BEFORE).label == "isotretinoin@2021-12-13"
    assert rule_set_at(AFTER).label == "isotretinoin@2026-08-08"
    assert rule_set_at(datetime(2026, 8, 8, tzinfo=timezone.utc)).label == "isotretinoin@2026-08-08"
    assert rule_set_at(datetime(2026, 8, 8, tzinfo=timezone.utc) - RESOLUTION).label == "isotretinoin@2021-12-13"


def negative(collected_at, sensitivity=25, setting="laboratory"):
    return PregnancyTestFact(collected_at=collected_at, result="negative", sensitivity_miu_ml=sensitivity,
                             setting=setting)


def first_prescription(now, tests, *, category="CAN_GET_PREGNANT", contraception_days=35, previous_issued=None,
                       days_supply=30, counseled_ago=HOUR):
    can = category == "CAN_GET_PREGNANT"
    history = PatientHistory(
        tests=tuple(sorted(tests, key=lambda t: t.collected_at, reverse=True)),
        contraception=AttestationFact(kind="contraception", attested_at=now - HOUR, methods=("IUD", "MALE_CONDOM"),
                                      started_on=now.date() - timedelta(days=contraception_days)) if can else None,
        counseling=AttestationFact(kind="counseling", attested_at=now - counseled_ago),
        latest_survey=SurveyFact(completed_at=now - HOUR) if can else None,
        previous_prescription_issued_at=previous_issued,
    )
    return PrescriptionFacts(
        rule_set=rule_set_at(now),
        prescriber_certification=certification(expires_at=now + 300 * DAY),
        patient=replace(patient("FRP_ADULT"), risk_category=category, agreement_signed_on=now.date() - 60 * DAY),
        history=history,
        request=PrescriptionRequestFact(ndc=NDC, product_in_program=True, quantity=30, days_supply=days_supply),
    )


def failed(facts, now):
    decision = gates.prescription_decide(facts=facts, now=now)
    return {c.code for c in decision.checks if not c.passed}


@pytest.mark.parametrize("now", [BEFORE, AFTER], ids=["2021 rules", "2026 rules"])
def test_two_tests_19_days_apart_the_second_yesterday_approve(now):
    assert failed(first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY)]), now) == set()


@pytest.mark.parametrize("now", [BEFORE, AFTER], ids=["2021 rules", "2026 rules"])
def test_the_two_tests_must_be_19_days_apart_to_the_microsecond(now):
    first = now - 20 * DAY
    assert failed(first_prescription(now, [negative(first), negative(first + 19 * DAY)]), now) == set()
    assert "PREGNANCY_TEST_SECOND" in failed(
        first_prescription(now, [negative(first), negative(first + 19 * DAY - RESOLUTION)]), now)


def test_before_2026_08_08_a_missed_window_locks_out_a_new_test_for_19_days():
    now = BEFORE
    missed = now - 10 * DAY  # its 7-day window closed three days ago, with no prescription
    tests = [negative(now - 40 * DAY), negative(missed)]

    assert failed(first_prescription(now, tests + [negative(now - HOUR)]), now) == {"PREGNANCY_TEST_LOCKOUT"}
    # a new test collected 19 days after the missed one counts again
    later = missed + 19 * DAY
    assert failed(first_prescription(later, [negative(later - 50 * DAY), negative(missed), negative(later)]), later) == set()
    almost = later - RESOLUTION
    assert failed(first_prescription(later, [negative(later - 50 * DAY), negative(missed), negative(almost)]), later) == {
        "PREGNANCY_TEST_LOCKOUT"}


def test_after_2026_08_08_a_new_test_counts_at_once_after_a_missed_window():
    now = AFTER
    tests = [negative(now - 40 * DAY), negative(now - 10 * DAY), negative(now - HOUR)]
    assert failed(first_prescription(now, tests), now) == set()


def test_no_lockout_when_the_window_was_used():
    now = BEFORE
    used = now - 10 * DAY
    facts = first_prescription(now, [negative(now - 40 * DAY), negative(used), negative(now - HOUR)], previous_issued=used + HOUR)
    assert "PREGNANCY_TEST_LOCKOUT" not in failed(facts, now)


@pytest.mark.parametrize("now", [BEFORE, AFTER], ids=["2021 rules", "2026 rules"])
def test_the_window_counts_calendar_days_the_collection_day_being_day_1(now):
    today = datetime.combine(now.date(), datetime.min.time(), tzinfo=timezone.utc)
    day_7 = today - 6 * DAY  # collected at the first moment of the day six days back: today is day 7
    assert failed(first_prescription(now, [negative(day_7 - 20 * DAY), negative(day_7)]), now) == set()
    day_8 = day_7 - RESOLUTION  # the last moment of the day before: today is day 8
    assert "PREGNANCY_TEST_RECENT" in failed(first_prescription(now, [negative(day_8 - 20 * DAY), negative(day_8)]),
                                             now)


def test_only_a_laboratory_second_test_counted_before_2026_08_08():
    for now, expected in ((BEFORE, {"PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_RECENT"}), (AFTER, set())):
        facts = first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY, setting="medical_office")])
        assert failed(facts, now) == expected


def test_a_home_test_never_counts_before_therapy():
    now = AFTER
    facts = first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY, setting="home")])
    assert "PREGNANCY_TEST_SECOND" in failed(facts, now)


@pytest.mark.parametrize("sensitivity, passes", [(25, True), (26, False), (50, False)])
def test_a_test_counts_at_25_miu_ml_or_better(sensitivity, passes):
    now = AFTER
    facts = first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY, sensitivity=sensitivity)])
    assert ("PREGNANCY_TEST_SECOND" not in failed(facts, now)) is passes


@pytest.mark.parametrize("days, passes", [(30, True), (29, False)])
def test_contraception_30_days_before_the_first_prescription(days, passes):
    now = AFTER
    facts = first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY)], contraception_days=days)
    assert failed(facts, now) == (set() if passes else {"CONTRACEPTION_STARTED"})


@pytest.mark.parametrize("days_supply, passes", [(30, True), (31, False)])
def test_at_most_30_days_of_supply(days_supply, passes):
    now = AFTER
    facts = first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY)], days_supply=days_supply)
    assert failed(facts, now) == (set() if passes else {"DAYS_SUPPLY_LIMIT"})


def test_cannot_get_pregnant_counseling_for_each_prescription_until_2026_08_08_then_at_enrollment():
    # counseled 40 days ago: too old for a prescription under the 2021 rules, enough under the 2026 ones
    for now, expected in ((BEFORE, {"COUNSELING_ATTESTED"}), (AFTER, set())):
        facts = first_prescription(now, [], category="CANNOT_GET_PREGNANT", counseled_ago=40 * DAY)
        assert failed(facts, now) == expected, now


def test_cannot_get_pregnant_authorization_lasts_30_days_from_counseling_then_from_issue():
    now = BEFORE
    counseled = now - 10 * DAY
    decision = gates.prescription_decide(
        facts=first_prescription(now, [], category="CANNOT_GET_PREGNANT", counseled_ago=10 * DAY), now=now)
    # 2021: 30 calendar days from the counseling, the counseling day being day 1
    assert decision.expires_at == datetime.combine(counseled.date() + 30 * DAY, datetime.min.time(),
                                                   tzinfo=timezone.utc)
    now = AFTER
    decision = gates.prescription_decide(
        facts=first_prescription(now, [], category="CANNOT_GET_PREGNANT", counseled_ago=10 * DAY), now=now)
    assert decision.expires_at == now + 30 * DAY


def test_the_categories_do_not_depend_on_age():
    now = AFTER
    child = replace(first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY)]).patient,
                    date_of_birth=date(2012, 1, 1))
    facts = replace(first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY)]), patient=child)
    assert failed(facts, now) == set()
