"""The pharmacy dispense decision (`rems.core.gates.dispense_decide`) under the real Pomalidomide rule set."""

from dataclasses import replace
from datetime import date

import pytest

from rems.core.gates import (
    FAILED_MATCH_BIRTH_DATE,
    FAILED_MATCH_UNKNOWN_NUMBER,
    RuleSetFact,
    dispense_decide,
    dispense_lost_race,
)

from .helpers import (
    ALL_CATEGORIES,
    AUTHORIZATION_EXPIRES_AT,
    DAY,
    DISPENSE_CODES,
    DISPENSE_FRP_CODES,
    FRP_CATEGORIES,
    HOUR,
    NOW,
    OTHER_NDC,
    RULE_SET_LABEL,
    SECOND,
    assert_approved,
    assert_denied,
    certification,
    check_of,
    codes,
    dispense_facts,
    negative_test,
    positive_test,
    with_authorization,
    with_dispense_request,
    with_patient,
)


def decide(facts):
    return dispense_decide(facts=facts, now=NOW)


# --- Approved --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("category", ALL_CATEGORIES)
def test_matching_request_is_approved_with_every_check_listed_and_passed(category):
    # given a certified pharmacy asking to dispense exactly what was authorized
    facts = dispense_facts(category)
    # when it asks for a dispense authorization
    decision = decide(facts)
    # then it is approved with every check passed (the pregnancy test check for FRP only)
    expected = DISPENSE_FRP_CODES if category in FRP_CATEGORIES else DISPENSE_CODES
    assert_approved(decision, expected)
    assert decision.rule_set == RULE_SET_LABEL


# --- Authorization found, rule set in force --------------------------------------------------------------
def test_unknown_authorization_is_denied_with_only_authorization_found():
    # the loader knows no program, rule set or patient without the authorization
    facts = replace(dispense_facts("FRP_ADULT"), authorization=None, rule_set=None, patient=None)
    decision = decide(facts)
    assert codes(decision) == ["AUTHORIZATION_FOUND"]
    assert_denied(decision, "AUTHORIZATION_FOUND")


def test_unknown_authorization_lists_only_authorization_found_whatever_else_is_wrong():
    facts = replace(
        dispense_facts("FRP_ADULT"), authorization=None, rule_set=None, patient=None, pharmacy_certification=None,
    )
    facts = with_dispense_request(facts, quantity=500, ndc=OTHER_NDC)
    decision = decide(facts)
    assert codes(decision) == ["AUTHORIZATION_FOUND"]
    assert_denied(decision, "AUTHORIZATION_FOUND")


def test_authorization_without_a_loaded_patient_fails_closed():
    facts = replace(dispense_facts("FRP_ADULT"), patient=None)
    decision = decide(facts)
    assert decision.status == "denied"
    assert decision.expires_at is None


@pytest.mark.parametrize(
    "rule_set",
    [RuleSetFact(label="pomalidomide@none", parameters=None, problem="no rule set in force"),
     RuleSetFact(label="pomalidomide@2025-01-01", parameters=None, problem="rule set is invalid: max_days_supply")],
    ids=["missing", "invalid"],
)
def test_no_valid_rule_set_denies_with_a_single_rule_set_check(rule_set):
    facts = replace(dispense_facts("FRP_ADULT"), rule_set=rule_set)
    decision = decide(facts)
    assert codes(decision) == ["RULE_SET_IN_FORCE"]
    assert_denied(decision, "RULE_SET_IN_FORCE")
    assert decision.rule_set == rule_set.label


# --- The patient, the product, the quantity --------------------------------------------------------------
def test_date_of_birth_mismatch_fails():
    facts = dispense_facts("FRP_ADULT")
    facts = with_dispense_request(facts, date_of_birth=facts.patient.date_of_birth.replace(day=2))
    assert_denied(decide(facts), "PATIENT_DOB_MATCH")


def test_date_of_birth_one_day_off_fails():
    facts = dispense_facts("MALE_ADULT")
    facts = with_dispense_request(facts, date_of_birth=date(1980, 3, 2))
    assert_denied(decide(facts), "PATIENT_DOB_MATCH")


def test_ndc_mismatch_fails():
    facts = with_dispense_request(dispense_facts("FRP_ADULT"), ndc=OTHER_NDC)
    assert_denied(decide(facts), "PRODUCT_MATCH")


@pytest.mark.parametrize("quantity", [28, 27, 1], ids=["equal", "smaller", "one"])
def test_quantity_up_to_the_authorized_passes(quantity):
    facts = with_dispense_request(dispense_facts("FRP_ADULT"), quantity=quantity)
    assert_approved(decide(facts))


@pytest.mark.parametrize("quantity", [29, 56, 0], ids=["one-more", "double", "zero"])
def test_quantity_larger_than_authorized_or_zero_fails(quantity):
    facts = with_dispense_request(dispense_facts("FRP_ADULT"), quantity=quantity)
    expected = ("QUANTITY_MATCH", "QUANTITY_LIMIT") if quantity > 28 else ("QUANTITY_MATCH",)
    assert_denied(decide(facts), *expected)


@pytest.mark.parametrize("days_supply", [28, 27, 1])
def test_days_supply_up_to_the_authorized_passes(days_supply):
    # the quantity must fit the days stated (one capsule a day), since the next fill counts from them
    facts = with_dispense_request(dispense_facts("FRP_ADULT"), days_supply=days_supply, quantity=days_supply)
    assert_approved(decide(facts))


@pytest.mark.parametrize("days_supply, quantity, passes", [(14, 14, True), (14, 15, False), (1, 28, False)])
def test_the_quantity_must_fit_the_days_of_supply_stated(days_supply, quantity, passes):
    # given a request that understates the days the quantity lasts
    facts = with_dispense_request(dispense_facts("FRP_ADULT"), days_supply=days_supply, quantity=quantity)
    decision = decide(facts)
    if passes:
        assert_approved(decision)
    else:
        assert_denied(decision, "QUANTITY_LIMIT")


@pytest.mark.parametrize("days_supply", [29, 0])
def test_days_supply_larger_than_authorized_or_zero_fails(days_supply):
    facts = with_dispense_request(dispense_facts("FRP_ADULT"), days_supply=days_supply)
    expected = ("DAYS_SUPPLY_MATCH",) if days_supply else ("DAYS_SUPPLY_MATCH", "QUANTITY_LIMIT")
    assert_denied(decide(facts), *expected)


def test_smaller_authorization_bounds_the_request():
    facts = with_authorization(dispense_facts("MALE_ADULT"), quantity=14, days_supply=14)
    facts = with_dispense_request(facts, quantity=15, days_supply=15)
    assert_denied(decide(facts), "QUANTITY_MATCH", "DAYS_SUPPLY_MATCH")


# --- The authorization's state ---------------------------------------------------------------------------
def test_authorization_expiring_exactly_now_fails():
    facts = with_authorization(dispense_facts("FRP_ADULT"), expires_at=NOW)
    decision = decide(facts)
    assert_denied(decision, "AUTHORIZATION_NOT_EXPIRED")
    assert "2026-06-15 12:00" in check_of(decision, "AUTHORIZATION_NOT_EXPIRED").message


def test_authorization_expiring_one_second_after_now_passes():
    facts = with_authorization(dispense_facts("FRP_ADULT"), expires_at=NOW + SECOND)
    decision = decide(facts)
    assert_approved(decision)
    assert decision.expires_at == NOW + SECOND


def test_lapsed_frp_authorization_tells_the_counter_the_pregnancy_test_is_stale():
    message = check_of(decide(with_authorization(dispense_facts("FRP_ADULT"), expires_at=NOW)),
                       "AUTHORIZATION_NOT_EXPIRED").message
    assert "7 days from her latest negative pregnancy test" in message


def test_lapsed_authorization_of_a_male_says_nothing_of_pregnancy_tests():
    message = check_of(decide(with_authorization(dispense_facts("MALE_ADULT"), expires_at=NOW)),
                       "AUTHORIZATION_NOT_EXPIRED").message
    assert "expired on 2026-06-15 12:00" in message and "pregnancy" not in message


def test_authorization_marked_expired_fails_even_before_its_time():
    facts = with_authorization(dispense_facts("FRP_ADULT"), status="expired")
    assert_denied(decide(facts), "AUTHORIZATION_NOT_EXPIRED")


@pytest.mark.parametrize("status", ["authorized", "dispensed", "cancelled", "something-else"])
def test_authorization_not_in_issued_state_fails_unused(status):
    facts = with_authorization(dispense_facts("FRP_ADULT"), status=status)
    assert_denied(decide(facts), "AUTHORIZATION_UNUSED")


# --- Parties ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["suspended", "revoked", "pending", "expired"])
def test_pharmacy_not_certified_fails(status):
    facts = replace(dispense_facts("FRP_ADULT"), pharmacy_certification=certification(status=status))
    assert_denied(decide(facts), "PHARMACY_CERTIFIED")


def test_pharmacy_without_certification_fails():
    facts = replace(dispense_facts("FRP_ADULT"), pharmacy_certification=None)
    assert_denied(decide(facts), "PHARMACY_CERTIFIED")


def test_pharmacy_certification_expiring_exactly_now_fails():
    facts = replace(dispense_facts("FRP_ADULT"), pharmacy_certification=certification(expires_at=NOW))
    assert_denied(decide(facts), "PHARMACY_CERTIFIED")


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_prescriber_no_longer_certified_fails(status):
    facts = replace(dispense_facts("FRP_ADULT"), prescriber_certification=certification(status=status))
    assert_denied(decide(facts), "PRESCRIBER_CERTIFIED")


def test_prescriber_certification_expired_since_the_prescription_fails():
    facts = replace(dispense_facts("MALE_ADULT"), prescriber_certification=certification(expires_at=NOW - SECOND))
    assert_denied(decide(facts), "PRESCRIBER_CERTIFIED")


def test_patient_suspended_fails():
    facts = with_patient(dispense_facts("MALE_ADULT"), status="suspended", status_reason="administrator decision")
    assert_denied(decide(facts), "PATIENT_ENROLLED")


# --- Risk category, checked again at the dispense ---------------------------------------------------------
@pytest.mark.parametrize(
    "issued_for, now_in",
    [("FRP_ADULT", "FNRP_ADULT"), ("FNRP_ADULT", "FRP_ADULT"), ("MALE_CHILD", "MALE_ADULT")],
)
def test_risk_category_changed_since_the_authorization_fails(issued_for, now_in):
    # given an authorization issued for one category, and a patient now enrolled in another
    facts = with_authorization(dispense_facts(now_in), risk_category=issued_for)
    # when the pharmacy asks to dispense
    decision = decide(facts)
    # then it is refused: what was attested and tested was for the old category
    assert_denied(decision, "RISK_CATEGORY_UNCHANGED")


@pytest.mark.parametrize("signed_on", [None, NOW.date() + DAY], ids=["missing", "tomorrow"])
def test_agreement_missing_at_the_dispense_fails(signed_on):
    facts = with_patient(dispense_facts("MALE_ADULT"), agreement_signed_on=signed_on)
    assert_denied(decide(facts), "RISK_CATEGORY_AGREEMENT")


def test_child_category_on_the_18th_birthday_fails_at_the_dispense():
    birthday = date(NOW.year - 18, NOW.month, NOW.day)
    facts = dispense_facts("MALE_CHILD")
    facts = with_patient(facts, date_of_birth=birthday)
    facts = with_dispense_request(facts, date_of_birth=birthday)
    assert_denied(decide(facts), "RISK_CATEGORY_AGE")


def test_child_category_the_day_before_the_18th_birthday_passes_at_the_dispense():
    birthday = date(NOW.year - 18, NOW.month, NOW.day) + DAY
    facts = dispense_facts("FRP_CHILD")
    facts = with_patient(facts, date_of_birth=birthday)
    facts = with_dispense_request(facts, date_of_birth=birthday)
    assert_approved(decide(facts))


# --- Positive pregnancy test (FRP) -----------------------------------------------------------------------
@pytest.mark.parametrize("category", FRP_CATEGORIES)
def test_positive_test_since_the_latest_negative_fails_for_frp(category):
    facts = replace(dispense_facts(category), recent_tests=(negative_test(NOW - 2 * DAY), positive_test(NOW - HOUR)))
    assert_denied(decide(facts), "PREGNANCY_TEST_NEGATIVE")


def test_positive_test_and_suspended_enrollment_both_listed():
    facts = replace(dispense_facts("FRP_ADULT"), recent_tests=(negative_test(NOW - 2 * DAY), positive_test(NOW - HOUR)))
    facts = with_patient(facts, status="suspended", status_reason="positive pregnancy test")
    assert_denied(decide(facts), "PREGNANCY_TEST_NEGATIVE", "PATIENT_ENROLLED")


def test_pregnancy_tests_are_not_checked_for_males():
    facts = replace(dispense_facts("MALE_ADULT"), recent_tests=(positive_test(NOW - HOUR),))
    decision = decide(facts)
    assert "PREGNANCY_TEST_NEGATIVE" not in codes(decision)
    assert_approved(decision)


# --- Dispense authorization expiry: min(now + 24 h, authorization expiry) --------------------------------
@pytest.mark.parametrize(
    "authorization_expires_at, expected",
    [
        (AUTHORIZATION_EXPIRES_AT, NOW + 24 * HOUR),
        (NOW + 24 * HOUR + SECOND, NOW + 24 * HOUR),
        (NOW + 24 * HOUR, NOW + 24 * HOUR),
        (NOW + 24 * HOUR - SECOND, NOW + 24 * HOUR - SECOND),
        (NOW + HOUR, NOW + HOUR),
    ],
    ids=["auth-5-days", "auth-24h+1s", "auth-24h", "auth-24h-1s", "auth-1h"],
)
def test_dispense_authorization_expires_24_hours_after_now_but_never_after_the_authorization(
    authorization_expires_at, expected
):
    facts = with_authorization(dispense_facts("FRP_ADULT"), expires_at=authorization_expires_at)
    decision = decide(facts)
    assert_approved(decision)
    assert decision.expires_at == expected


# --- A denial lists every failed check -------------------------------------------------------------------
def test_denial_lists_every_failed_check_not_only_the_first():
    # given a request where nearly everything is wrong
    facts = dispense_facts("FRP_ADULT")
    facts = replace(
        facts,
        prescriber_certification=certification(status="revoked"),
        recent_tests=(positive_test(NOW - HOUR),),
    )
    facts = with_authorization(facts, status="dispensed", expires_at=NOW - DAY)
    facts = with_patient(facts, status="suspended", status_reason="positive pregnancy test")
    facts = with_dispense_request(facts, ndc=OTHER_NDC, quantity=29, days_supply=29)
    # when deciding
    decision = decide(facts)
    # then every failure is listed
    assert_denied(
        decision,
        "AUTHORIZATION_NOT_EXPIRED",
        "AUTHORIZATION_UNUSED",
        "PRODUCT_MATCH",
        "QUANTITY_MATCH",
        "DAYS_SUPPLY_MATCH",
        "PRESCRIBER_CERTIFIED",
        "PATIENT_ENROLLED",
        "PREGNANCY_TEST_NEGATIVE",
    )
    assert codes(decision) == list(DISPENSE_FRP_CODES)
    assert check_of(decision, "RULE_SET_IN_FORCE").passed is True
    assert check_of(decision, "AUTHORIZATION_FOUND").passed is True


def test_three_failures_are_all_listed():
    facts = with_dispense_request(dispense_facts("MALE_CHILD"), ndc=OTHER_NDC, quantity=30)
    facts = replace(facts, prescriber_certification=None)
    assert_denied(decide(facts), "PRODUCT_MATCH", "QUANTITY_MATCH", "QUANTITY_LIMIT", "PRESCRIBER_CERTIFIED")


@pytest.mark.parametrize("change", ["wrong_birth_date", "pharmacy_not_certified"])
def test_an_unknown_pharmacy_or_a_wrong_birth_date_learns_nothing_more(change):
    # given a suspended FRP patient whose authorization has lapsed
    facts = with_patient(dispense_facts("FRP_ADULT"), status="suspended", status_reason="positive pregnancy test")
    facts = with_authorization(facts, expires_at=NOW - DAY)
    if change == "wrong_birth_date":
        facts = with_dispense_request(facts, date_of_birth=date(1999, 1, 1))
    else:
        facts = replace(facts, pharmacy_certification=None)
    # when deciding
    decision = decide(facts)
    # then only the identity checks are answered: nothing about the patient's enrollment or tests
    assert decision.status == "denied"
    assert codes(decision) == ["RULE_SET_IN_FORCE", "AUTHORIZATION_FOUND", "PHARMACY_CERTIFIED", "PATIENT_DOB_MATCH"]
    assert "suspended" not in " ".join(c.message for c in decision.checks)


# --- What a denial counts as, and a lost race ------------------------------------------------------------
def test_an_unknown_number_counts_toward_the_unknown_number_limit():
    facts = replace(dispense_facts("FRP_ADULT"), authorization=None, rule_set=None, patient=None)
    assert decide(facts).failed_match == FAILED_MATCH_UNKNOWN_NUMBER


def test_a_wrong_birth_date_counts_toward_the_birth_date_limit_even_with_other_failures():
    facts = replace(dispense_facts("MALE_ADULT"), pharmacy_certification=None)
    facts = with_dispense_request(facts, date_of_birth=date(1980, 3, 2))
    decision = decide(facts)
    assert_denied(decision, "PHARMACY_CERTIFIED", "PATIENT_DOB_MATCH")
    assert decision.failed_match == FAILED_MATCH_BIRTH_DATE


@pytest.mark.parametrize("change", ["none", "pharmacy_not_certified", "lapsed", "no_rule_set"])
def test_any_other_decision_counts_toward_no_limit(change):
    facts = dispense_facts("FRP_ADULT")
    if change == "pharmacy_not_certified":
        facts = replace(facts, pharmacy_certification=None)
    elif change == "lapsed":
        facts = with_authorization(facts, expires_at=NOW - DAY)
    elif change == "no_rule_set":
        facts = replace(facts, rule_set=RuleSetFact(label="pomalidomide@none", parameters=None))
    assert decide(facts).failed_match == ""


def test_a_lost_race_is_denied_by_authorization_unused_in_the_engines_words():
    approved = decide(dispense_facts("FRP_ADULT"))
    assert approved.approved and approved.expires_at is not None

    lost = dispense_lost_race(approved)

    assert lost.status == "denied" and lost.expires_at is None and lost.rule_set == approved.rule_set
    assert lost.failed_codes == ["AUTHORIZATION_UNUSED"]
    assert "Another request took this prescription authorization" in check_of(lost, "AUTHORIZATION_UNUSED").message
    assert [c.code for c in lost.checks] == [c.code for c in approved.checks]
