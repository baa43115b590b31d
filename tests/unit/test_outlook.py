"""What the patient list shows as due or missing: pure, at the exact boundaries, like the gate engine."""

from datetime import timedelta

from rems import outlook
from rems.gates import OpenPrescriptionFact, PatientHistory, SurveyFact

from .helpers import DAY, HOUR, NOW, PARAMS, SECOND, contraception, male_counseling, negative_test, patient

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
    assert item.due_at == NOW - 2 * HOUR + 24 * HOUR
    history = PatientHistory(tests=(negative_test(NOW - 24 * HOUR - SECOND), negative_test(NOW - 12 * DAY)))
    item = items(therapy_started_at=None, history=history)["pregnancy_test"]
    assert "Collect the second test within 24 hours" in item.text


def test_during_therapy_the_next_test_is_due_one_interval_after_the_last():
    def state(ago):
        history = PatientHistory(tests=(negative_test(NOW - ago),))
        return items(therapy_started_at=THERAPY_START, history=history)["pregnancy_test"].state

    assert state(28 * DAY) == outlook.OVERDUE  # due exactly now
    assert state(28 * DAY - SECOND) == outlook.DUE_SOON
    assert state(26 * DAY) == outlook.DUE_SOON  # two days before
    assert state(26 * DAY - SECOND) == outlook.OK


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


def test_fnrp_adults_have_no_test_or_attestation_and_a_survey_every_six_months():
    result = items("FNRP_ADULT", therapy_started_at=NOW - 100 * DAY)
    assert set(result) == {"survey"} and result["survey"].state == outlook.OK
    history = PatientHistory(latest_survey=SurveyFact(completed_at=NOW - 182 * DAY))
    assert items("FNRP_ADULT", therapy_started_at=NOW - 300 * DAY, history=history)["survey"].state == outlook.OVERDUE


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
