"""iPLEDGE on the same engine, at its boundaries, under the rule set in force at the clock: the one from
2021-12-13 before 2026-08-08, the modification after. Pure: the bundled file's parameters, no database."""

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from rems.core import gates, timing
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
                       days_supply=30, counseled_ago=HOUR, time_zone="America/New_York"):
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
        patient=replace(patient("FRP_ADULT"), risk_category=category, agreement_signed_on=now.date() - 60 * DAY,
                        time_zone=time_zone),
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


def test_a_test_inside_the_lockout_does_not_lift_it_and_when_its_window_passes_unused_extends_it():
    now = BEFORE
    missed = now - 16 * DAY
    inside = missed + 12 * DAY  # during the lockout: it counts for nothing
    tests = [negative(now - 45 * DAY), negative(missed), negative(inside), negative(now - HOUR)]
    assert failed(first_prescription(now, tests), now) == {"PREGNANCY_TEST_LOCKOUT"}
    # 19 days after the missed test, the test taken inside the lockout has let its own window pass unused too
    later = missed + 19 * DAY
    tests = [negative(now - 45 * DAY), negative(missed), negative(inside), negative(later)]
    assert failed(first_prescription(later, tests), later) == {"PREGNANCY_TEST_LOCKOUT"}
    latest = inside + 19 * DAY
    tests = [negative(now - 45 * DAY), negative(missed), negative(inside), negative(latest)]
    assert failed(first_prescription(latest, tests), latest) == set()


def test_a_test_in_a_setting_that_does_not_count_clears_no_positive_one():
    now = BEFORE
    positive = PregnancyTestFact(collected_at=now - 3 * DAY, result="positive", sensitivity_miu_ml=25)
    home = negative(now - DAY, setting="home")  # 2021 rules: no home test counts
    tests = [negative(now - 20 * DAY), positive, home]
    assert "PREGNANCY_TEST_NEGATIVE" in failed(first_prescription(now, tests), now)
    tests = [negative(now - 20 * DAY), positive, negative(now - DAY)]
    assert "PREGNANCY_TEST_NEGATIVE" not in failed(first_prescription(now, tests), now)


def test_after_2026_08_08_a_new_test_counts_at_once_after_a_missed_window():
    now = AFTER
    tests = [negative(now - 40 * DAY), negative(now - 10 * DAY), negative(now - HOUR)]
    assert failed(first_prescription(now, tests), now) == set()


def test_no_lockout_when_the_window_was_used():
    now = BEFORE
    used = now - 10 * DAY
    facts = first_prescription(now, [negative(now - 40 * DAY), negative(used), negative(now - HOUR)], previous_issued=used + HOUR)
    assert "PREGNANCY_TEST_LOCKOUT" not in failed(facts, now)


# 2 November (the week after summer time ends) and 3 March 2026 (the week before it begins, on 8 March)
@pytest.mark.parametrize("day_1", [date(2026, 11, 2), date(2026, 3, 3)], ids=str)
@pytest.mark.parametrize("hour", [0, 9, 23])
def test_the_window_counts_calendar_days_where_the_patient_is_tested_the_collection_day_being_day_1(day_1, hour):
    new_york = ZoneInfo("America/New_York")
    collected = datetime.combine(day_1, datetime.min.time(), tzinfo=new_york) + timedelta(hours=hour, minutes=30)
    day_8 = datetime.combine(day_1 + 7 * DAY, datetime.min.time(), tzinfo=new_york)  # its first moment

    def refused(now):
        facts = first_prescription(now, [negative(collected - 20 * DAY), negative(collected)])
        return "PREGNANCY_TEST_RECENT" in failed(facts, now)

    assert not refused(day_8 - RESOLUTION) and refused(day_8)


def fact(time_zone=""):
    return replace(patient("FRP_ADULT"), risk_category="CAN_GET_PREGNANT", time_zone=time_zone)


@pytest.mark.parametrize("time_zone", ["", "Europe/Paris"], ids=["not given", "not the program's"])
def test_without_the_patients_time_zone_the_window_ends_at_its_earliest_end_never_later(time_zone):
    zones = FILE["rule_sets"][-1]["parameters"]["calendar_day_time_zones"]
    params = rule_set_at(AFTER).parameters
    for hour in range(24):
        collected = datetime(2026, 11, 2, hour, 15, tzinfo=timezone.utc)
        ends = [datetime.combine(collected.astimezone(ZoneInfo(z)).date() + 7 * DAY, datetime.min.time(),
                                 tzinfo=ZoneInfo(z)) for z in zones]
        end = timing.recent_test_fails_at(params, fact(time_zone), collected)
        assert end == min(ends) and all(end <= e for e in ends) and end - collected <= timedelta(days=7)
        # in the patient's own time zone, her full seventh day
        own = timing.recent_test_fails_at(params, fact("Pacific/Honolulu"), collected)
        assert own == ends[zones.index("Pacific/Honolulu")] >= end


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
    new_york = ZoneInfo("America/New_York")
    counseled_ago = 10 * DAY
    # the 2021 rules: 30 calendar days from the counseling, its day being day 1 (where the patient is tested)
    decision = gates.prescription_decide(
        facts=first_prescription(now, [], category="CANNOT_GET_PREGNANT", counseled_ago=counseled_ago), now=now)
    counseled_day = (now - counseled_ago).astimezone(new_york).date()
    assert decision.expires_at == datetime.combine(counseled_day + 30 * DAY, datetime.min.time(), tzinfo=new_york)
    # the 2026 modification: 30 days from the issue
    now = AFTER
    decision = gates.prescription_decide(
        facts=first_prescription(now, [], category="CANNOT_GET_PREGNANT", counseled_ago=counseled_ago), now=now)
    assert decision.expires_at == now + 30 * DAY


def test_the_categories_do_not_depend_on_age():
    now = AFTER
    child = replace(first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY)]).patient,
                    date_of_birth=date(2012, 1, 1))
    facts = replace(first_prescription(now, [negative(now - 20 * DAY), negative(now - DAY)]), patient=child)
    assert failed(facts, now) == set()
