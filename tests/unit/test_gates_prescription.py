"""The prescription decision (`rems.core.gates.prescription_decide`) under the real Pomalidomide rule set.

Each rule is tested on both sides of its boundary; the facts come from `helpers`, which builds a case every
gate approves, and each test changes only the fact it is about.
"""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from rems.core.gates import OpenPrescriptionFact, RuleSetFact, SurveyFact, prescription_decide
from rems.core.rules import InvalidRuleSet, RuleParameters

from .helpers import (
    ALL_CATEGORIES,
    DAY,
    FRP_CATEGORIES,
    HOUR,
    MALE_CATEGORIES,
    NOW,
    PREVIOUS_PRESCRIPTION_AT,
    RULE_SET_LABEL,
    SECOND,
    TODAY,
    assert_approved,
    assert_denied,
    certification,
    check_of,
    codes,
    contraception,
    dispense_fact,
    expected_prescription_codes,
    first_prescription_facts,
    male_counseling,
    negative_test,
    positive_test,
    raw_parameters,
    therapy_prescription_facts,
    with_history,
    with_patient,
    with_request,
)


def decide(facts):
    return prescription_decide(facts=facts, now=NOW)


def facts_for(category, first):
    return first_prescription_facts(category) if first else therapy_prescription_facts(category)


# --- Approved cases: every check listed, every check passed ---------------------------------------------
@pytest.mark.parametrize("first", [True, False], ids=["first", "therapy"])
@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_complete_facts_are_approved_with_every_check_listed_and_passed(category, first):
    # given a patient of any category whose every gate is met
    facts = facts_for(category, first)
    # when the prescriber asks for an authorization
    decision = decide(facts)
    # then it is approved, lists every check of that category, all passed, under the rule set in force
    assert_approved(decision, expected_prescription_codes(category, first))
    assert decision.rule_set == RULE_SET_LABEL


# --- Rule set in force -----------------------------------------------------------------------------------
def _invalid_rule_set_fact():
    data = raw_parameters()
    data["max_days_supply"] = 0
    try:
        RuleParameters.from_dict(data)
    except InvalidRuleSet as exc:
        return RuleSetFact(label="pomalidomide@broken", parameters=None, problem=f"rule set is invalid: {exc}")
    raise AssertionError("a rule set with max_days_supply 0 must not load")


@pytest.mark.parametrize(
    "rule_set",
    [
        RuleSetFact(label="pomalidomide@none", parameters=None, problem="no rule set in force"),
        RuleSetFact(label="pomalidomide@none", parameters=None),
        _invalid_rule_set_fact(),
    ],
    ids=["missing", "missing-without-problem", "invalid"],
)
def test_no_valid_rule_set_denies_with_a_single_rule_set_check(rule_set):
    # given otherwise perfect facts, but no valid rule set in force
    facts = replace(first_prescription_facts("FRP_ADULT"), rule_set=rule_set)
    # when deciding
    decision = decide(facts)
    # then the decision is denied with exactly one check, RULE_SET_IN_FORCE, failed
    assert codes(decision) == ["RULE_SET_IN_FORCE"]
    assert_denied(decision, "RULE_SET_IN_FORCE")
    assert decision.rule_set == rule_set.label


def test_no_valid_rule_set_denies_even_when_every_other_fact_is_bad():
    facts = replace(
        first_prescription_facts("FRP_ADULT"),
        rule_set=RuleSetFact(label="pomalidomide@none", parameters=None, problem="no rule set in force"),
        prescriber_certification=None,
    )
    facts = with_request(facts, days_supply=90, quantity=500)
    decision = decide(facts)
    assert codes(decision) == ["RULE_SET_IN_FORCE"]
    assert_denied(decision, "RULE_SET_IN_FORCE")


# --- Prescriber certification ----------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["suspended", "revoked", "pending", "expired"])
def test_prescriber_certification_not_active_fails(status):
    facts = replace(first_prescription_facts("MALE_ADULT"), prescriber_certification=certification(status=status))
    decision = decide(facts)
    assert_denied(decision, "PRESCRIBER_CERTIFIED")


def test_prescriber_without_certification_fails():
    facts = replace(first_prescription_facts("MALE_ADULT"), prescriber_certification=None)
    assert_denied(decide(facts), "PRESCRIBER_CERTIFIED")


def test_active_certification_expiring_exactly_now_fails():
    facts = replace(first_prescription_facts("MALE_ADULT"), prescriber_certification=certification(expires_at=NOW))
    decision = decide(facts)
    assert_denied(decision, "PRESCRIBER_CERTIFIED")
    assert "2026-06-15" in check_of(decision, "PRESCRIBER_CERTIFIED").message


def test_active_certification_expiring_one_second_after_now_passes():
    facts = replace(
        first_prescription_facts("MALE_ADULT"), prescriber_certification=certification(expires_at=NOW + SECOND)
    )
    assert_approved(decide(facts))


# --- Patient enrollment, agreement, risk category vs age -------------------------------------------------
@pytest.mark.parametrize("status", ["suspended", "pending", "revoked", "expired"])
def test_patient_enrollment_not_active_fails(status):
    facts = with_patient(first_prescription_facts("FNRP_ADULT"), status=status, status_reason="administrator decision")
    assert_denied(decide(facts), "PATIENT_ENROLLED")


def test_agreement_signed_today_passes():
    facts = with_patient(first_prescription_facts("FNRP_ADULT"), agreement_signed_on=TODAY)
    assert_approved(decide(facts))


@pytest.mark.parametrize("signed_on", [None, TODAY + DAY], ids=["missing", "tomorrow"])
def test_agreement_missing_or_dated_in_the_future_fails(signed_on):
    facts = with_patient(first_prescription_facts("FNRP_ADULT"), agreement_signed_on=signed_on)
    assert_denied(decide(facts), "RISK_CATEGORY_AGREEMENT")


EIGHTEENTH_BIRTHDAY_TODAY = date(TODAY.year - 18, TODAY.month, TODAY.day)
EIGHTEENTH_BIRTHDAY_TOMORROW = EIGHTEENTH_BIRTHDAY_TODAY + DAY


@pytest.mark.parametrize("category", ["FRP_ADULT", "FNRP_ADULT", "MALE_ADULT"])
def test_adult_category_passes_on_the_18th_birthday(category):
    facts = with_patient(first_prescription_facts(category), date_of_birth=EIGHTEENTH_BIRTHDAY_TODAY)
    assert_approved(decide(facts))


@pytest.mark.parametrize("category", ["FRP_ADULT", "FNRP_ADULT", "MALE_ADULT"])
def test_adult_category_fails_the_day_before_the_18th_birthday(category):
    facts = with_patient(first_prescription_facts(category), date_of_birth=EIGHTEENTH_BIRTHDAY_TOMORROW)
    assert_denied(decide(facts), "RISK_CATEGORY_AGE")


@pytest.mark.parametrize("category", ["FRP_CHILD", "FNRP_CHILD", "MALE_CHILD"])
def test_child_category_passes_the_day_before_the_18th_birthday(category):
    facts = with_patient(first_prescription_facts(category), date_of_birth=EIGHTEENTH_BIRTHDAY_TOMORROW)
    assert_approved(decide(facts))


@pytest.mark.parametrize("category", ["FRP_CHILD", "FNRP_CHILD", "MALE_CHILD"])
def test_child_category_fails_on_the_18th_birthday(category):
    facts = with_patient(first_prescription_facts(category), date_of_birth=EIGHTEENTH_BIRTHDAY_TODAY)
    assert_denied(decide(facts), "RISK_CATEGORY_AGE")


# --- Supply ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("days_supply", [1, 14, 28])
def test_days_supply_up_to_28_passes(days_supply):
    facts = with_request(first_prescription_facts("MALE_ADULT"), days_supply=days_supply, quantity=days_supply)
    assert_approved(decide(facts))


@pytest.mark.parametrize("days_supply", [29, 90])
def test_days_supply_over_28_fails(days_supply):
    facts = with_request(first_prescription_facts("MALE_ADULT"), days_supply=days_supply, quantity=28)
    assert_denied(decide(facts), "DAYS_SUPPLY_LIMIT")


def test_days_supply_of_zero_fails():
    facts = with_request(first_prescription_facts("MALE_ADULT"), days_supply=0, quantity=0)
    assert_denied(decide(facts), "DAYS_SUPPLY_LIMIT", "QUANTITY_LIMIT")


@pytest.mark.parametrize("days_supply, quantity", [(28, 28), (28, 1), (14, 14), (21, 21)])
def test_quantity_up_to_one_a_day_passes(days_supply, quantity):
    facts = with_request(first_prescription_facts("MALE_ADULT"), days_supply=days_supply, quantity=quantity)
    assert_approved(decide(facts))


@pytest.mark.parametrize("days_supply, quantity", [(28, 29), (14, 15), (21, 28), (28, 0)])
def test_quantity_over_one_a_day_or_zero_fails(days_supply, quantity):
    facts = with_request(first_prescription_facts("MALE_ADULT"), days_supply=days_supply, quantity=quantity)
    assert_denied(decide(facts), "QUANTITY_LIMIT")


def test_product_outside_the_program_fails():
    facts = with_request(first_prescription_facts("MALE_ADULT"), ndc="00000-0000-00", product_in_program=False)
    assert_denied(decide(facts), "PRODUCT_IN_PROGRAM")


# --- One open prescription -------------------------------------------------------------------------------
def _open(expires_at):
    return OpenPrescriptionFact(authorization_number="P0000000000X", expires_at=expires_at)


def test_open_prescription_expiring_after_now_fails():
    facts = with_history(first_prescription_facts("FNRP_ADULT"), open_prescription=_open(NOW + SECOND))
    decision = decide(facts)
    assert_denied(decision, "ONE_OPEN_PRESCRIPTION")
    assert "P0000000000X" in check_of(decision, "ONE_OPEN_PRESCRIPTION").message


@pytest.mark.parametrize("expires_at", [NOW, NOW - SECOND], ids=["exactly-now", "before-now"])
def test_open_prescription_expired_at_or_before_now_does_not_block(expires_at):
    facts = with_history(first_prescription_facts("FNRP_ADULT"), open_prescription=_open(expires_at))
    assert_approved(decide(facts))


# --- Next fill -------------------------------------------------------------------------------------------
def test_next_fill_with_exactly_7_days_of_supply_left_passes():
    # dispensed 21 days ago for 28 days: 7 days remain
    facts = with_history(therapy_prescription_facts("MALE_ADULT"), last_dispense=dispense_fact(NOW - 21 * DAY, 28))
    assert_approved(decide(facts))


def test_next_fill_with_7_days_and_1_second_of_supply_left_fails():
    facts = with_history(
        therapy_prescription_facts("MALE_ADULT"), last_dispense=dispense_fact(NOW - 21 * DAY + SECOND, 28)
    )
    assert_denied(decide(facts), "NEXT_FILL_TIMING")


def test_next_fill_refusal_says_from_when_it_can_be_authorized():
    # dispensed 20 days ago for 28 days: 8 days remain; allowed once 7 remain, i.e. from tomorrow same hour
    facts = with_history(therapy_prescription_facts("MALE_ADULT"), last_dispense=dispense_fact(NOW - 20 * DAY, 28))
    decision = decide(facts)
    assert_denied(decision, "NEXT_FILL_TIMING")
    assert "2026-06-16 12:00" in check_of(decision, "NEXT_FILL_TIMING").message


def test_next_fill_without_an_earlier_dispense_passes():
    facts = with_history(therapy_prescription_facts("MALE_ADULT"), last_dispense=None)
    assert_approved(decide(facts))


# --- Contraception (FRP) ---------------------------------------------------------------------------------
@pytest.mark.parametrize("category", FRP_CATEGORIES)
@pytest.mark.parametrize(
    "methods",
    [("IUD", "MALE_CONDOM"), ("HORMONAL", "DIAPHRAGM"), ("TUBAL_LIGATION", "CERVICAL_CAP"),
     ("PARTNER_VASECTOMY", "MALE_CONDOM"), ("IUD", "HORMONAL", "MALE_CONDOM")],
)
def test_one_highly_effective_plus_one_additional_method_passes(category, methods):
    facts = with_history(first_prescription_facts(category), contraception=contraception(methods=methods))
    assert_approved(decide(facts))


@pytest.mark.parametrize(
    "methods",
    [("MALE_CONDOM", "DIAPHRAGM"), ("DIAPHRAGM", "CERVICAL_CAP"), ("IUD",), ("HORMONAL",), ("MALE_CONDOM",), ()],
    ids=["two-additional", "two-additional-b", "only-iud", "only-hormonal", "only-condom", "none"],
)
def test_methods_without_one_highly_effective_and_one_additional_fail(methods):
    facts = with_history(first_prescription_facts("FRP_ADULT"), contraception=contraception(methods=methods))
    assert_denied(decide(facts), "CONTRACEPTION_METHODS")


def test_commitment_to_abstinence_without_methods_passes():
    facts = with_history(
        first_prescription_facts("FRP_ADULT"), contraception=contraception(methods=(), abstinence=True)
    )
    assert_approved(decide(facts))


def test_contraception_started_28_days_before_the_first_prescription_passes():
    facts = with_history(
        first_prescription_facts("FRP_ADULT"), contraception=contraception(started_on=TODAY - 28 * DAY)
    )
    assert_approved(decide(facts))


def test_contraception_started_27_days_before_the_first_prescription_fails():
    facts = with_history(
        first_prescription_facts("FRP_ADULT"), contraception=contraception(started_on=TODAY - 27 * DAY)
    )
    decision = decide(facts)
    assert_denied(decision, "CONTRACEPTION_STARTED")
    # the refusal says from which day it can be authorized: started + 28 days
    assert "2026-06-16" in check_of(decision, "CONTRACEPTION_STARTED").message


@pytest.mark.parametrize("started_on", [None, TODAY + DAY], ids=["missing", "tomorrow"])
def test_contraception_start_missing_or_in_the_future_fails(started_on):
    facts = with_history(first_prescription_facts("FRP_ADULT"), contraception=contraception(started_on=started_on))
    assert_denied(decide(facts), "CONTRACEPTION_STARTED")


def test_contraception_started_recently_is_fine_during_therapy():
    # the 28-day lead time applies to the first prescription only
    facts = with_history(therapy_prescription_facts("FRP_ADULT"), contraception=contraception(started_on=TODAY - DAY))
    assert_approved(decide(facts))


# --- Attestations: newer than the previous prescription, at most 30 days old -----------------------------
def _attestation_case(kind, attested_at, therapy=True):
    """Facts for an FRP (contraception) or a male (counseling) patient with the attestation at `attested_at`."""
    if kind == "contraception":
        base = therapy_prescription_facts("FRP_ADULT") if therapy else first_prescription_facts("FRP_ADULT")
        if attested_at is None:
            return with_history(base, contraception=None), "CONTRACEPTION_ATTESTED"
        att = contraception(attested_at=attested_at, started_on=TODAY - 150 * DAY)
        return with_history(base, contraception=att), "CONTRACEPTION_ATTESTED"
    base = therapy_prescription_facts("MALE_ADULT") if therapy else first_prescription_facts("MALE_ADULT")
    att = None if attested_at is None else male_counseling(attested_at=attested_at)
    return with_history(base, male_counseling=att), "MALE_COUNSELING_ATTESTED"


KINDS = ["contraception", "male_counseling"]


@pytest.mark.parametrize("kind", KINDS)
def test_attestation_exactly_30_days_old_passes(kind):
    facts, _ = _attestation_case(kind, NOW - 30 * DAY, therapy=False)
    assert_approved(decide(facts))


@pytest.mark.parametrize("kind", KINDS)
def test_attestation_30_days_and_1_second_old_fails(kind):
    facts, code = _attestation_case(kind, NOW - 30 * DAY - SECOND, therapy=False)
    assert_denied(decide(facts), code)


@pytest.mark.parametrize("kind", KINDS)
def test_attestation_one_second_after_the_previous_prescription_passes(kind):
    facts, _ = _attestation_case(kind, PREVIOUS_PRESCRIPTION_AT + SECOND)
    assert_approved(decide(facts))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("offset", [timedelta(0), -SECOND], ids=["same-moment", "one-second-before"])
def test_attestation_not_newer_than_the_previous_prescription_fails(kind, offset):
    facts, code = _attestation_case(kind, PREVIOUS_PRESCRIPTION_AT + offset)
    assert_denied(decide(facts), code)


@pytest.mark.parametrize("kind", KINDS)
def test_attestation_dated_in_the_future_fails(kind):
    facts, code = _attestation_case(kind, NOW + SECOND)
    assert_denied(decide(facts), code)


@pytest.mark.parametrize("kind", KINDS)
def test_attestation_missing_fails(kind):
    facts, code = _attestation_case(kind, None)
    assert_denied(decide(facts), code)


@pytest.mark.parametrize("kind", KINDS)
def test_attestation_made_exactly_now_passes(kind):
    facts, _ = _attestation_case(kind, NOW)
    assert_approved(decide(facts))


# --- Male counseling: who needs it ----------------------------------------------------------------------
@pytest.mark.parametrize("category", MALE_CATEGORIES)
def test_males_need_condom_counseling(category):
    facts = with_history(first_prescription_facts(category), male_counseling=None)
    assert_denied(decide(facts), "MALE_COUNSELING_ATTESTED")


@pytest.mark.parametrize("category", ["FRP_ADULT", "FRP_CHILD", "FNRP_ADULT", "FNRP_CHILD"])
def test_females_are_not_asked_for_condom_counseling(category):
    decision = decide(first_prescription_facts(category))
    assert "MALE_COUNSELING_ATTESTED" not in codes(decision)
    assert_approved(decision)


@pytest.mark.parametrize("category", ["FNRP_ADULT", "FNRP_CHILD", "MALE_ADULT", "MALE_CHILD"])
def test_categories_not_of_reproductive_potential_need_no_contraception_or_tests(category):
    facts = with_history(first_prescription_facts(category), tests=(), contraception=None)
    decision = decide(facts)
    assert_approved(decision)
    assert not [c for c in codes(decision) if c.startswith(("PREGNANCY_", "CONTRACEPTION_"))]


# --- Pregnancy tests before the first prescription (FRP) -------------------------------------------------
def _first_with_early_test_at(collected_at, sensitivity=25):
    return with_history(
        first_prescription_facts("FRP_ADULT"),
        tests=(negative_test(collected_at, sensitivity), negative_test(NOW - 2 * HOUR)),
    )


@pytest.mark.parametrize(
    "collected_at",
    [NOW - 10 * DAY, NOW - 10 * DAY - SECOND, NOW - 12 * DAY, NOW - 14 * DAY + SECOND, NOW - 14 * DAY],
    ids=["10d", "10d+1s-before", "12d", "14d-1s", "14d"],
)
def test_first_test_collected_10_to_14_days_before_passes(collected_at):
    assert_approved(decide(_first_with_early_test_at(collected_at)))


@pytest.mark.parametrize(
    "collected_at",
    [NOW - 10 * DAY + SECOND, NOW - 14 * DAY - SECOND, NOW - 9 * DAY, NOW - 15 * DAY],
    ids=["10d-1s", "14d+1s", "9d", "15d"],
)
def test_first_test_collected_outside_10_to_14_days_fails(collected_at):
    decision = decide(_first_with_early_test_at(collected_at))
    assert_denied(decision, "PREGNANCY_TEST_FIRST")


@pytest.mark.parametrize("collected_at", [NOW - 24 * HOUR, NOW - 24 * HOUR + SECOND, NOW - SECOND, NOW],
                         ids=["24h", "24h-1s", "1s", "now"])
def test_second_test_within_24_hours_passes(collected_at):
    facts = with_history(
        first_prescription_facts("FRP_ADULT"),
        tests=(negative_test(NOW - 12 * DAY), negative_test(collected_at)),
    )
    assert_approved(decide(facts))


def test_second_test_24_hours_and_1_second_before_fails():
    facts = with_history(
        first_prescription_facts("FRP_ADULT"),
        tests=(negative_test(NOW - 12 * DAY), negative_test(NOW - 24 * HOUR - SECOND)),
    )
    assert_denied(decide(facts), "PREGNANCY_TEST_SECOND")


def test_first_prescription_without_any_test_fails_every_test_check():
    facts = with_history(first_prescription_facts("FRP_CHILD"), tests=())
    assert_denied(decide(facts), "PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_RECENT")


@pytest.mark.parametrize("sensitivity", [25, 50])
def test_test_sensitive_to_50_or_better_qualifies(sensitivity):
    assert_approved(decide(_first_with_early_test_at(NOW - 12 * DAY, sensitivity)))


@pytest.mark.parametrize("sensitivity", [51, 100])
def test_test_less_sensitive_than_50_does_not_qualify(sensitivity):
    assert_denied(decide(_first_with_early_test_at(NOW - 12 * DAY, sensitivity)), "PREGNANCY_TEST_FIRST")


@pytest.mark.parametrize("sensitivity", [51, 100])
def test_only_insensitive_tests_fail_every_test_check(sensitivity):
    facts = with_history(
        first_prescription_facts("FRP_ADULT"),
        tests=(negative_test(NOW - 12 * DAY, sensitivity), negative_test(NOW - 2 * HOUR, sensitivity)),
    )
    assert_denied(decide(facts), "PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_RECENT")


# --- Pregnancy tests during therapy (FRP) ----------------------------------------------------------------
def _therapy_with_latest_test(collected_at, therapy_started_at, irregular=False):
    facts = therapy_prescription_facts("FRP_ADULT")
    facts = with_patient(facts, therapy_started_at=therapy_started_at, irregular_cycles=irregular)
    return with_history(facts, tests=(negative_test(collected_at),))


INTERVAL_CASES = [
    # (therapy started, irregular cycles, interval in days)
    pytest.param(NOW - 10 * DAY, False, 7, id="first-4-weeks"),
    pytest.param(NOW - 10 * DAY, True, 7, id="first-4-weeks-irregular"),
    pytest.param(NOW - 90 * DAY, False, 28, id="regular"),
    pytest.param(NOW - 90 * DAY, True, 14, id="irregular"),
]


@pytest.mark.parametrize("started, irregular, interval", INTERVAL_CASES)
def test_latest_test_one_second_inside_the_testing_interval_passes(started, irregular, interval):
    facts = _therapy_with_latest_test(NOW - interval * DAY + SECOND, started, irregular)
    assert check_of(decide(facts), "PREGNANCY_TEST_INTERVAL").passed is True


@pytest.mark.parametrize("started, irregular, interval", INTERVAL_CASES)
def test_latest_test_one_second_outside_the_testing_interval_fails(started, irregular, interval):
    facts = _therapy_with_latest_test(NOW - interval * DAY - SECOND, started, irregular)
    decision = decide(facts)
    assert check_of(decision, "PREGNANCY_TEST_INTERVAL").passed is False
    # older than 7 days, so the authorization could not be valid either
    assert_denied(decision, "PREGNANCY_TEST_INTERVAL", "PREGNANCY_TEST_RECENT")


def test_weekly_testing_applies_until_4_weeks_after_therapy_started():
    # therapy started 4 weeks minus 1 second ago: still weekly, so a test 8 days old is too old
    facts = _therapy_with_latest_test(NOW - 8 * DAY, NOW - 28 * DAY + SECOND)
    assert check_of(decide(facts), "PREGNANCY_TEST_INTERVAL").passed is False


@pytest.mark.parametrize("started", [NOW - 29 * DAY, NOW - 29 * DAY - SECOND], ids=["test-7d-before-week-4", "earlier"])
def test_a_test_whose_week_runs_past_the_weekly_weeks_counts_for_four_weeks(started):
    # collected 21 days into therapy (or a second later): its 7 days would end after the 4 weekly weeks, so it
    # counts for the 4-week interval from then on
    facts = _therapy_with_latest_test(NOW - 8 * DAY, started)
    assert check_of(decide(facts), "PREGNANCY_TEST_INTERVAL").passed is True


def test_a_test_whose_week_ends_inside_the_weekly_weeks_is_due_then_whatever_comes_after():
    # collected 20 days into therapy: due on day 27, still in the weekly weeks; from then on she needs a new test,
    # even after week 4 (one rule, so the reminder and the gate agree: docs/checks.md)
    facts = _therapy_with_latest_test(NOW - 8 * DAY, NOW - 28 * DAY)
    assert check_of(decide(facts), "PREGNANCY_TEST_INTERVAL").passed is False


def test_no_test_during_therapy_fails():
    facts = with_history(therapy_prescription_facts("FRP_ADULT"), tests=())
    assert_denied(decide(facts), "PREGNANCY_TEST_INTERVAL", "PREGNANCY_TEST_RECENT")


# --- Authorization validity: 7 days from the latest negative test (FRP) ----------------------------------
def test_latest_negative_test_7_days_minus_1_second_old_passes():
    facts = with_history(therapy_prescription_facts("FRP_ADULT"), tests=(negative_test(NOW - 7 * DAY + SECOND),))
    decision = decide(facts)
    assert_approved(decision)
    assert decision.expires_at == NOW + SECOND


@pytest.mark.parametrize("age", [7 * DAY, 7 * DAY + SECOND], ids=["exactly-7d", "7d+1s"])
def test_latest_negative_test_7_days_old_or_more_fails(age):
    # regular cycles, 90 days into therapy: within the 28-day testing interval, but too old for a 7-day authorization
    facts = with_history(therapy_prescription_facts("FRP_ADULT"), tests=(negative_test(NOW - age),))
    decision = decide(facts)
    assert check_of(decision, "PREGNANCY_TEST_INTERVAL").passed is True
    assert_denied(decision, "PREGNANCY_TEST_RECENT")


def test_too_old_test_refusal_names_the_collection_date():
    facts = with_history(therapy_prescription_facts("FRP_ADULT"), tests=(negative_test(NOW - 8 * DAY),))
    decision = decide(facts)
    assert_denied(decision, "PREGNANCY_TEST_RECENT")
    assert "2026-06-07" in check_of(decision, "PREGNANCY_TEST_RECENT").message


@pytest.mark.parametrize("category", FRP_CATEGORIES)
def test_frp_authorization_expires_7_days_after_the_latest_negative_test(category):
    # first prescription: tests collected 12 days and 2 hours ago; the latest counts
    decision = decide(first_prescription_facts(category))
    assert_approved(decision)
    assert decision.expires_at == NOW - 2 * HOUR + 7 * DAY


def test_frp_authorization_expiry_ignores_insensitive_later_tests():
    facts = with_history(
        therapy_prescription_facts("FRP_ADULT"),
        tests=(negative_test(NOW - 3 * DAY), negative_test(NOW - HOUR, sensitivity=100)),
    )
    decision = decide(facts)
    assert_approved(decision)
    assert decision.expires_at == NOW - 3 * DAY + 7 * DAY


@pytest.mark.parametrize("category", ["FNRP_ADULT", "FNRP_CHILD", "MALE_ADULT", "MALE_CHILD"])
@pytest.mark.parametrize("first", [True, False], ids=["first", "therapy"])
def test_other_authorizations_expire_30_days_after_issue(category, first):
    decision = decide(facts_for(category, first))
    assert_approved(decision)
    assert decision.expires_at == NOW + 30 * DAY


# --- Positive pregnancy test -----------------------------------------------------------------------------
def test_positive_test_after_the_latest_negative_blocks():
    facts = with_history(
        therapy_prescription_facts("FRP_ADULT"), tests=(negative_test(NOW - 2 * DAY), positive_test(NOW - DAY))
    )
    decision = decide(facts)
    assert_denied(decision, "PREGNANCY_TEST_NEGATIVE")
    assert "2026-06-14" in check_of(decision, "PREGNANCY_TEST_NEGATIVE").message


def test_positive_test_at_the_same_moment_as_the_latest_negative_blocks():
    facts = with_history(
        therapy_prescription_facts("FRP_ADULT"), tests=(negative_test(NOW - DAY), positive_test(NOW - DAY))
    )
    assert_denied(decide(facts), "PREGNANCY_TEST_NEGATIVE")


def test_positive_test_followed_only_by_an_insensitive_negative_blocks():
    facts = with_history(
        therapy_prescription_facts("FRP_ADULT"),
        tests=(negative_test(NOW - 3 * DAY), positive_test(NOW - 2 * DAY), negative_test(NOW - DAY, sensitivity=100)),
    )
    assert_denied(decide(facts), "PREGNANCY_TEST_NEGATIVE")


def test_positive_test_with_no_negative_blocks_and_lists_the_missing_tests_too():
    facts = with_history(first_prescription_facts("FRP_ADULT"), tests=(positive_test(NOW - HOUR),))
    assert_denied(
        decide(facts),
        "PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_NEGATIVE", "PREGNANCY_TEST_RECENT",
    )


def test_positive_test_before_a_later_negative_does_not_fail_the_test_check():
    # the latest test is negative; the enrollment suspension that follows a positive test is checked separately
    facts = with_history(
        therapy_prescription_facts("FRP_ADULT"), tests=(positive_test(NOW - 5 * DAY), negative_test(NOW - DAY))
    )
    assert check_of(decide(facts), "PREGNANCY_TEST_NEGATIVE").passed is True


def test_positive_test_with_suspended_enrollment_lists_both_failures():
    facts = with_history(
        therapy_prescription_facts("FRP_ADULT"), tests=(negative_test(NOW - 2 * DAY), positive_test(NOW - DAY))
    )
    facts = with_patient(facts, status="suspended", status_reason="positive pregnancy test collected 2026-06-14")
    assert_denied(decide(facts), "PATIENT_ENROLLED", "PREGNANCY_TEST_NEGATIVE")


# --- Patient survey --------------------------------------------------------------------------------------
@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_no_survey_is_needed_before_the_first_prescription(category):
    facts = with_history(first_prescription_facts(category), latest_survey=None)
    decision = decide(facts)
    assert_approved(decision)
    assert check_of(decision, "SURVEY_COMPLETED").passed is True


EVERY_PRESCRIPTION = ["FRP_ADULT", "FRP_CHILD", "MALE_ADULT", "MALE_CHILD"]


@pytest.mark.parametrize("category", EVERY_PRESCRIPTION)
def test_survey_one_second_after_the_previous_prescription_passes(category):
    facts = with_history(
        therapy_prescription_facts(category), latest_survey=SurveyFact(completed_at=PREVIOUS_PRESCRIPTION_AT + SECOND)
    )
    assert_approved(decide(facts))


@pytest.mark.parametrize("category", EVERY_PRESCRIPTION)
@pytest.mark.parametrize(
    "survey",
    [None, SurveyFact(completed_at=PREVIOUS_PRESCRIPTION_AT), SurveyFact(completed_at=PREVIOUS_PRESCRIPTION_AT - DAY),
     SurveyFact(completed_at=NOW + SECOND)],
    ids=["none", "same-moment-as-previous", "before-previous", "in-the-future"],
)
def test_survey_not_completed_since_the_previous_prescription_fails(category, survey):
    facts = with_history(therapy_prescription_facts(category), latest_survey=survey)
    assert_denied(decide(facts), "SURVEY_COMPLETED")


def test_adult_fnrp_needs_no_survey_in_the_first_182_days_of_therapy():
    facts = with_patient(therapy_prescription_facts("FNRP_ADULT"), therapy_started_at=NOW - 182 * DAY + SECOND)
    facts = with_history(facts, latest_survey=None)
    assert_approved(decide(facts))


def test_adult_fnrp_needs_a_survey_from_182_days_into_therapy():
    facts = with_patient(therapy_prescription_facts("FNRP_ADULT"), therapy_started_at=NOW - 182 * DAY)
    facts = with_history(facts, latest_survey=None)
    assert_denied(decide(facts), "SURVEY_COMPLETED")


@pytest.mark.parametrize("completed_at", [NOW - 182 * DAY, NOW - 182 * DAY + SECOND, NOW - 100 * DAY, NOW],
                         ids=["182d", "182d-1s", "100d", "now"])
def test_adult_fnrp_survey_within_182_days_passes(completed_at):
    facts = with_patient(therapy_prescription_facts("FNRP_ADULT"), therapy_started_at=NOW - 400 * DAY)
    # the survey cadence is every 182 days, not every prescription: one before the previous one still counts
    facts = with_history(facts, latest_survey=SurveyFact(completed_at=completed_at))
    assert_approved(decide(facts))


@pytest.mark.parametrize("completed_at", [NOW - 182 * DAY - SECOND, NOW - 300 * DAY, NOW + SECOND],
                         ids=["182d+1s", "300d", "in-the-future"])
def test_adult_fnrp_survey_older_than_182_days_or_in_the_future_fails(completed_at):
    facts = with_patient(therapy_prescription_facts("FNRP_ADULT"), therapy_started_at=NOW - 400 * DAY)
    facts = with_history(facts, latest_survey=SurveyFact(completed_at=completed_at))
    assert_denied(decide(facts), "SURVEY_COMPLETED")


def test_child_fnrp_needs_a_survey_before_each_prescription():
    facts = with_history(
        therapy_prescription_facts("FNRP_CHILD"), latest_survey=SurveyFact(completed_at=PREVIOUS_PRESCRIPTION_AT - DAY)
    )
    assert_denied(decide(facts), "SURVEY_COMPLETED")


# --- A denial lists every failed check -------------------------------------------------------------------
def test_denial_lists_every_failed_check_not_only_the_first():
    # given an FRP patient in therapy where many gates fail at once
    facts = therapy_prescription_facts("FRP_ADULT")
    facts = replace(facts, prescriber_certification=certification(status="suspended"))
    facts = with_patient(facts, agreement_signed_on=None)
    facts = with_request(facts, days_supply=29, quantity=40, product_in_program=False)
    facts = with_history(
        facts,
        open_prescription=_open(NOW + DAY),
        last_dispense=dispense_fact(NOW - DAY, 28),
        contraception=None,
        tests=(negative_test(NOW - 2 * DAY), positive_test(NOW - DAY)),
        latest_survey=None,
    )
    # when deciding
    decision = decide(facts)
    # then each failure is listed, and the checks that hold are still listed as passed
    assert_denied(
        decision,
        "PRESCRIBER_CERTIFIED",
        "RISK_CATEGORY_AGREEMENT",
        "PRODUCT_IN_PROGRAM",
        "DAYS_SUPPLY_LIMIT",
        "QUANTITY_LIMIT",
        "ONE_OPEN_PRESCRIPTION",
        "NEXT_FILL_TIMING",
        "CONTRACEPTION_ATTESTED",
        "PREGNANCY_TEST_NEGATIVE",
        "SURVEY_COMPLETED",
    )
    for code in ("RULE_SET_IN_FORCE", "PATIENT_ENROLLED", "RISK_CATEGORY_AGE", "PREGNANCY_TEST_INTERVAL",
                 "PREGNANCY_TEST_RECENT"):
        assert check_of(decision, code).passed is True
    assert decision.rule_set == RULE_SET_LABEL


def test_male_denial_lists_every_failed_check():
    facts = first_prescription_facts("MALE_CHILD")
    facts = replace(facts, prescriber_certification=None)
    facts = with_patient(facts, status="suspended", date_of_birth=EIGHTEENTH_BIRTHDAY_TODAY)
    facts = with_history(facts, male_counseling=None)
    assert_denied(
        decide(facts), "PRESCRIBER_CERTIFIED", "PATIENT_ENROLLED", "RISK_CATEGORY_AGE", "MALE_COUNSELING_ATTESTED"
    )


def test_the_decision_does_not_depend_on_anything_but_facts_and_now():
    # the same facts decided twice at the same moment give the same decision
    facts = first_prescription_facts("FRP_ADULT")
    assert decide(facts) == decide(facts)
    # and the same facts decided a day later are judged at that later moment
    later = prescription_decide(facts=facts, now=NOW + DAY)
    assert later.status == "denied"
    assert "PREGNANCY_TEST_SECOND" in later.failed_codes


def test_a_survey_every_n_days_asked_before_the_first_prescription_too():
    raw = raw_parameters()
    raw["surveys"]["FNRP_ADULT"] = {"every": 182, "before_first_prescription": True}
    params = RuleParameters.from_dict(raw)
    facts = replace(first_prescription_facts("FNRP_ADULT"), rule_set=RuleSetFact(label="t", parameters=params))
    assert check_of(prescription_decide(facts=facts, now=NOW), "SURVEY_COMPLETED").passed is False
    for completed, passes in ((NOW - 182 * DAY, True), (NOW - 182 * DAY - SECOND, False)):
        surveyed = with_history(facts, latest_survey=SurveyFact(completed_at=completed))
        assert check_of(prescription_decide(facts=surveyed, now=NOW), "SURVEY_COMPLETED").passed is passes


def test_the_interval_message_names_the_interval_the_latest_test_counts_for():
    # a test of day 20 of therapy counts for the weekly interval: on day 32 it is 5 days late, not "every 28"
    facts = therapy_prescription_facts()
    facts = with_patient(facts, therapy_started_at=NOW - 32 * DAY)
    facts = with_history(facts, tests=(negative_test(NOW - 12 * DAY),))
    check = check_of(prescription_decide(facts=facts, now=NOW), "PREGNANCY_TEST_INTERVAL")
    assert not check.passed and "every 7 days" in check.message
