"""What the patient list shows as due or missing: pure, at the exact boundaries, like the gate engine."""

from datetime import timedelta

from rems.core import outlook
from rems.core.gates import OpenPrescriptionFact, PatientHistory, SurveyFact
from rems.core.timing import RESOLUTION

from .helpers import (
    DAY,
    HOUR,
    NOW,
    PARAMS,
    SECOND,
    TODAY,
    contraception,
    dispense_fact,
    male_counseling,
    negative_test,
    patient,
)

THERAPY_START = NOW - timedelta(weeks=10)  # past the weekly weeks: tests every 28 days (regular cycles)


def items(category="FRP_ADULT", history=PatientHistory(), **changes):
    return {i.kind: i for i in outlook.patient_outlook(patient=patient(category, **changes), history=history,
                                                       params=PARAMS, now=NOW)}


def test_no_rule_set_or_inactive_enrollment_is_a_single_missing_item():
    assert [i.kind for i in outlook.patient_outlook(patient=patient(), history=PatientHistory(), params=None,
                                                    now=NOW)] == ["rule_set"]
    result = items(status="suspended")
    assert list(result) == ["enrollment"] and result["enrollment"].state == outlook.MISSING


def test_before_therapy_the_two_tests_are_missing_until_the_first_is_on_file():
    assert items(therapy_started_at=None)["pregnancy_test"].state == outlook.MISSING
    history = PatientHistory(tests=(negative_test(NOW - 3 * DAY),))
    item = items(therapy_started_at=None, history=history)["pregnancy_test"]
    assert item.state == outlook.OK and item.due_at == NOW - 3 * DAY + 10 * DAY


def test_before_therapy_a_first_test_older_than_14_days_no_longer_counts():
    history = PatientHistory(tests=(negative_test(NOW - 14 * DAY - SECOND),))
    assert items(therapy_started_at=None, history=history)["pregnancy_test"].state == outlook.MISSING
    history = PatientHistory(tests=(negative_test(NOW - 14 * DAY + HOUR),))
    item = items(therapy_started_at=None, history=history)["pregnancy_test"]
    assert item.state == outlook.DUE_SOON and "second test" in item.text


def test_before_therapy_both_tests_on_file_are_ready_until_the_second_is_24_hours_old():
    history = PatientHistory(tests=(negative_test(NOW - 2 * HOUR), negative_test(NOW - 12 * DAY)))
    item = items(therapy_started_at=None, history=history)["pregnancy_test"]
    assert item.state == outlook.OK and "ready to prescribe" in item.text
    assert item.due_at == NOW - 2 * HOUR + 24 * HOUR + RESOLUTION  # the first moment the second test is too old
    history = PatientHistory(tests=(negative_test(NOW - 24 * HOUR - SECOND), negative_test(NOW - 12 * DAY)))
    item = items(therapy_started_at=None, history=history)["pregnancy_test"]
    assert "Collect the second test within 24 hours" in item.text


def test_during_therapy_the_next_test_is_due_one_interval_after_the_last():
    def state(ago):
        # mid-supply: the next fill is not possible yet, so only the testing schedule counts
        history = PatientHistory(tests=(negative_test(NOW - ago),), last_dispense=dispense_fact(NOW - 5 * DAY))
        return items(therapy_started_at=THERAPY_START, history=history)["pregnancy_test"].state

    assert state(28 * DAY + SECOND) == outlook.OVERDUE  # the gate refuses it from 28 days and a tick
    assert state(28 * DAY) == outlook.DUE_SOON  # its last moment
    assert state(26 * DAY + RESOLUTION) == outlook.DUE_SOON  # two days before the first failing moment
    assert state(26 * DAY) == outlook.OK


def test_once_the_next_fill_is_possible_a_test_older_than_7_days_is_missing():
    def item(test_ago, dispensed_ago):
        history = PatientHistory(tests=(negative_test(NOW - test_ago),),
                                 last_dispense=dispense_fact(NOW - dispensed_ago))
        return items(therapy_started_at=THERAPY_START, history=history)["pregnancy_test"]

    assert item(7 * DAY, 21 * DAY).state == outlook.MISSING  # 7 days of supply left: the next fill is possible
    assert item(7 * DAY, 17 * DAY).state == outlook.OK  # possible in 4 days: not yet pressing
    assert item(7 * DAY, 21 * DAY - SECOND).state == outlook.DUE_SOON  # possible in a second, and the test is old
    recent = item(7 * DAY - SECOND, 21 * DAY)
    assert recent.state == outlook.DUE_SOON and "Recent enough for a prescription until" in recent.text


def test_a_test_too_insensitive_does_not_count():
    history = PatientHistory(tests=(negative_test(NOW - DAY, sensitivity=PARAMS.pregnancy_test_max_sensitivity_miu_ml + 1),))
    assert items(therapy_started_at=THERAPY_START, history=history)["pregnancy_test"].state == outlook.OVERDUE


def test_an_attestation_is_good_for_30_days_and_one_prescription():
    current = PatientHistory(contraception=contraception(attested_at=NOW - 30 * DAY + SECOND))
    assert items(history=current)["attestation"].state == outlook.DUE_SOON
    stale = PatientHistory(contraception=contraception(attested_at=NOW - 30 * DAY - SECOND))
    assert items(history=stale)["attestation"].state == outlook.MISSING
    used = PatientHistory(contraception=contraception(attested_at=NOW - DAY),
                          previous_prescription_issued_at=NOW - HOUR)
    assert items(history=used)["attestation"].state == outlook.MISSING
    fresh = PatientHistory(male_counseling=male_counseling(attested_at=NOW - DAY))
    assert items("MALE_ADULT", history=fresh)["attestation"].state == outlook.OK


def test_a_current_attestation_still_fails_on_its_methods_or_a_late_start_as_the_decision_does():
    one_method = PatientHistory(contraception=contraception(methods=("IUD",)))
    item = items(history=one_method)["attestation"]
    assert item.state == outlook.MISSING and "Two methods are required" in item.text
    late = PatientHistory(contraception=contraception(started_on=TODAY - 27 * DAY))
    item = items(history=late)["attestation"]
    assert item.state == outlook.MISSING and "less than 28 days" in item.text
    on_time = PatientHistory(contraception=contraception(started_on=TODAY - 28 * DAY))
    assert items(history=on_time)["attestation"].state == outlook.OK
    # during therapy the start date no longer matters
    assert items(therapy_started_at=THERAPY_START, history=late)["attestation"].state == outlook.OK


def test_fnrp_adults_have_no_test_or_attestation_and_a_survey_every_six_months():
    result = items("FNRP_ADULT", therapy_started_at=NOW - 100 * DAY)
    assert set(result) == {"survey"} and result["survey"].state == outlook.OK
    history = PatientHistory(latest_survey=SurveyFact(completed_at=NOW - 182 * DAY - SECOND))
    assert items("FNRP_ADULT", therapy_started_at=NOW - 300 * DAY, history=history)["survey"].state == outlook.OVERDUE
    history = PatientHistory(latest_survey=SurveyFact(completed_at=NOW - 182 * DAY))
    assert items("FNRP_ADULT", therapy_started_at=NOW - 300 * DAY, history=history)["survey"].state == outlook.DUE_SOON


def test_an_open_authorization_is_flagged_the_day_before_it_lapses():
    def state(left):
        history = PatientHistory(open_prescription=OpenPrescriptionFact("P123", NOW + left))
        return items("MALE_ADULT", history=history).get("authorization")

    assert state(24 * HOUR).state == outlook.DUE_SOON
    assert state(24 * HOUR + SECOND).state == outlook.OK
    assert state(timedelta(0)) is None  # lapsed: nothing open any more


def test_the_most_pressing_item_comes_first():
    history = PatientHistory(tests=(negative_test(NOW - 30 * DAY),), contraception=contraception())
    result = outlook.patient_outlook(patient=patient(therapy_started_at=THERAPY_START), history=history,
                                     params=PARAMS, now=NOW)
    assert [i.state for i in result][0] == outlook.OVERDUE


def test_whenever_the_list_says_ok_for_tests_and_attestation_a_prescription_now_passes_those_checks():
    """Over a grid of histories: an FRP patient in therapy whose test and attestation items are both OK, and whose
    next fill is possible, passes every pregnancy-test and contraception check of the decision itself."""
    from itertools import product

    from rems.core.gates import prescription_decide

    from .helpers import therapy_prescription_facts, with_history

    base = therapy_prescription_facts("FRP_ADULT")
    codes = {"PREGNANCY_TEST_INTERVAL", "PREGNANCY_TEST_RECENT", "PREGNANCY_TEST_NEGATIVE",
             "CONTRACEPTION_ATTESTED", "CONTRACEPTION_METHODS", "CONTRACEPTION_STARTED"}
    seen_ok = 0
    for test_days, attested_days, dispensed_days in product((1, 6, 7, 8, 13, 20, 27, 29), (1, 29, 31), (21, 25)):
        facts = with_history(
            base, tests=(negative_test(NOW - test_days * DAY + HOUR),),
            contraception=contraception(attested_at=NOW - attested_days * DAY + HOUR, started_on=TODAY - 150 * DAY),
            last_dispense=dispense_fact(NOW - dispensed_days * DAY))
        shown = {i.kind: i.state for i in outlook.patient_outlook(patient=facts.patient, history=facts.history,
                                                                  params=PARAMS, now=NOW)}
        if shown["pregnancy_test"] in (outlook.OK, outlook.DUE_SOON) and shown["attestation"] in (
                outlook.OK, outlook.DUE_SOON):
            seen_ok += 1
            failed = {c.code for c in prescription_decide(facts=facts, now=NOW).checks if not c.passed}
            assert not failed & codes, (test_days, attested_days, dispensed_days, failed)
    assert seen_ok >= 4  # the grid does reach the OK side


def test_while_an_authorization_is_open_what_the_next_one_needs_is_not_missing():
    """ONE_OPEN_PRESCRIPTION: no next prescription can be asked for before the open one lapses; what it will
    need is due from then, not missing now."""
    issued_at = NOW - HOUR
    open_rx = OpenPrescriptionFact("P123", issued_at + 7 * DAY)
    for category, attested in (("FRP_ADULT", contraception(issued_at - HOUR)),
                               ("MALE_ADULT", male_counseling(issued_at - HOUR))):
        history = PatientHistory(tests=(negative_test(NOW - 2 * HOUR), negative_test(NOW - 12 * DAY)),
                                 contraception=attested if category == "FRP_ADULT" else None,
                                 male_counseling=attested if category == "MALE_ADULT" else None,
                                 previous_prescription_issued_at=issued_at, open_prescription=open_rx)
        result = items(category, history=history)
        assert {i.state for i in result.values()} <= {outlook.OK, outlook.DUE_SOON}, result
        assert result["attestation"].due_at == open_rx.expires_at


def test_right_after_a_first_dispense_nothing_is_missing_or_overdue():
    dispensed_at = NOW - HOUR
    for category, attested in (("FRP_ADULT", contraception(NOW - 3 * HOUR)),
                               ("MALE_ADULT", male_counseling(NOW - 3 * HOUR))):
        history = PatientHistory(
            tests=(negative_test(NOW - 4 * HOUR), negative_test(NOW - 12 * DAY)),
            contraception=attested if category == "FRP_ADULT" else None,
            male_counseling=attested if category == "MALE_ADULT" else None,
            previous_prescription_issued_at=NOW - 2 * HOUR, last_dispense=dispense_fact(dispensed_at, 21))
        result = items(category, therapy_started_at=dispensed_at, history=history)
        assert {i.state for i in result.values()} == {outlook.OK}, result
