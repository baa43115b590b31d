"""Rule-set parameters (`rems.core.rules.RuleParameters`): loading, validation and derived values, for every
program file that comes with the service."""

import copy
import json
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

import rems
from rems.core.rules import InvalidRuleSet, RuleParameters

from .helpers import PARAMS, raw_parameters

DATA = Path(rems.__file__).resolve().parent / "program" / "data"
FILES = {path.stem: json.loads(path.read_text()) for path in sorted(DATA.glob("*.json"))}
FIELD_NAMES = [f.name for f in fields(RuleParameters)]
# Whole numbers, and whether 0 is allowed.
WHOLE_NUMBERS = {
    "adult_age_years": 1, "prescriber_certification_months": 1, "pharmacy_certification_months": 1,
    "contraception_min_days_before_first_prescription": 0, "attestation_max_age_days": 1,
    "pregnancy_test_max_sensitivity_miu_ml": 1, "first_tests_min_days_apart": 0, "max_days_supply": 1,
    "max_units_per_day": 1, "dispense_authorization_validity_hours": 1, "next_fill_max_remaining_days": 0,
}
NULLABLE = ["reenrollment_after_days_off_therapy", "second_test_max_hours_before", "missed_window_lockout_days"]


def iso(version):
    return next(rs for rs in FILES["isotretinoin"]["rule_sets"] if rs["version"] == version)["parameters"]


def load(**changes):
    data = raw_parameters()
    data.update(changes)
    return RuleParameters.from_dict(data)


def refused(match, **changes):
    with pytest.raises(InvalidRuleSet, match=match):
        load(**changes)


# --- The programs that come with the service ------------------------------------------------------------------
def test_the_four_programs_come_as_data():
    assert set(FILES) == {"pomalidomide", "lenalidomide", "thalidomide", "isotretinoin"}


@pytest.mark.parametrize("slug", ["pomalidomide", "lenalidomide", "thalidomide", "isotretinoin"])
def test_every_rule_set_loads_and_says_where_each_parameter_comes_from(slug):
    data = FILES[slug]
    assert data["slug"] == slug and data["ingredient"]["rxnorm"].isdigit()
    assert data["products"] and all({"ndc", "name", "strength_mg", "package_size", "confirmed", "source"} <= set(p)
                                    for p in data["products"])
    for rule_set in data["rule_sets"]:
        RuleParameters.from_dict(rule_set["parameters"])
        assert set(rule_set["sources"]) == set(rule_set["parameters"]), rule_set["version"]
        assert all(text.strip() for text in rule_set["sources"].values())


def test_the_pomalidomide_rule_set_has_the_documented_numbers():
    # the numbers of docs/rems-rules.md
    assert PARAMS.adult_age_years == 18
    assert set(PARAMS.reproductive_potential_categories) == {"FRP_ADULT", "FRP_CHILD"}
    assert set(PARAMS.male_categories) == {"MALE_ADULT", "MALE_CHILD"}
    assert set(PARAMS.contraception_primary_methods) == {"IUD", "HORMONAL", "TUBAL_LIGATION", "PARTNER_VASECTOMY"}
    assert set(PARAMS.contraception_secondary_methods) == {"MALE_CONDOM", "DIAPHRAGM", "CERVICAL_CAP"}
    assert PARAMS.contraception_min_days_before_first_prescription == 28
    assert PARAMS.pregnancy_test_max_sensitivity_miu_ml == 50
    assert PARAMS.first_test_days_before == (10, 14)
    assert PARAMS.second_test_max_hours_before == 24
    interval = PARAMS.testing_interval
    assert (interval.initial_weeks, interval.initial_days, interval.regular_days, interval.irregular_days) == (
        4, 7, 28, 14)
    assert PARAMS.max_days_supply == 28
    frp, other = PARAMS.authorization_windows["FRP_ADULT"], PARAMS.authorization_windows["MALE_ADULT"]
    assert (frp.from_, frp.days, frp.counting) == ("latest_negative_test", 7, "elapsed")
    assert (other.from_, other.days) == ("issue", 30)
    assert PARAMS.dispense_authorization_validity_hours == 24
    assert PARAMS.next_fill_max_remaining_days == 7
    assert PARAMS.reenrollment_after_days_off_therapy == 365
    assert PARAMS.surveys["FNRP_ADULT"].every == 182
    assert all(PARAMS.surveys[c].every is None for c in ("FRP_ADULT", "FRP_CHILD", "FNRP_CHILD", "MALE_ADULT"))
    assert PARAMS.counseling["MALE_ADULT"].kind == "male_counseling"
    assert [r.kind for r in PARAMS.clinical_reminders] == ["blood_count"]


def test_the_thalidomide_class_shares_its_numbers():
    pom = FILES["pomalidomide"]["rule_sets"][0]["parameters"]
    for slug in ("lenalidomide", "thalidomide"):
        other = copy.deepcopy(FILES[slug]["rule_sets"][0]["parameters"])
        other["clinical_reminders"] = pom["clinical_reminders"]
        assert other == pom, slug
    assert FILES["thalidomide"]["rule_sets"][0]["parameters"]["clinical_reminders"] == []


def test_ipledge_2021_and_its_2026_modification():
    old, new = RuleParameters.from_dict(iso("2021-12-13")), RuleParameters.from_dict(iso("2026-08-08"))
    for params in (old, new):
        assert set(params.risk_categories) == {"CAN_GET_PREGNANT", "CANNOT_GET_PREGNANT"}
        assert {c.age for c in params.risk_categories.values()} == {"any"}
        assert params.pregnancy_test_max_sensitivity_miu_ml == 25
        assert params.first_tests_min_days_apart == 19
        assert params.contraception_min_days_before_first_prescription == 30
        assert params.max_days_supply == 30
        assert params.testing_interval is None
        window = params.authorization_windows["CAN_GET_PREGNANT"]
        assert (window.from_, window.days, window.counting) == ("latest_negative_test", 7, "calendar_days")
        assert params.surveys["CAN_GET_PREGNANT"].before_first_prescription is True
        assert params.clinical_reminders == ()
        assert (params.prescriber_certification_months, params.pharmacy_certification_months) == (12, 12)
    assert old.missed_window_lockout_days == 19 and new.missed_window_lockout_days is None
    assert old.test_settings_second == ("laboratory",)
    assert set(new.test_settings_second) == {"laboratory", "medical_office"}
    assert "home" in new.test_settings_during_therapy and "home" not in old.test_settings_during_therapy
    assert old.counseling["CANNOT_GET_PREGNANT"].required == "every_prescription"
    assert new.counseling["CANNOT_GET_PREGNANT"].required == "at_enrollment"
    assert old.authorization_windows["CANNOT_GET_PREGNANT"].from_ == "counseling"
    assert new.authorization_windows["CANNOT_GET_PREGNANT"].from_ == "issue"


def test_loading_does_not_depend_on_key_order():
    data = raw_parameters()
    reordered = dict(reversed(list(data.items())))
    assert RuleParameters.from_dict(reordered) == RuleParameters.from_dict(data)


# --- Missing, unknown, wrong-typed -----------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, [], "{}", 42, [("max_days_supply", 28)]])
def test_parameters_that_are_not_an_object_are_refused(value):
    with pytest.raises(InvalidRuleSet):
        RuleParameters.from_dict(value)


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_each_missing_parameter_is_refused_by_name(name):
    data = raw_parameters()
    del data[name]
    with pytest.raises(InvalidRuleSet, match=name):
        RuleParameters.from_dict(data)


@pytest.mark.parametrize("name", ["max_day_supply", "lockout_days", "MAX_DAYS_SUPPLY"])
def test_unknown_parameter_is_refused_by_name(name):
    refused(name, **{name: 19})


def test_another_schema_is_refused():
    refused("schema", schema=1)


@pytest.mark.parametrize("name", list(WHOLE_NUMBERS))
@pytest.mark.parametrize("value", ["28", 28.0, True, False, None, -1, [28]], ids=repr)
def test_whole_number_parameter_of_the_wrong_type_or_negative_is_refused(name, value):
    refused(name, **{name: value})


@pytest.mark.parametrize("name", [n for n, least in WHOLE_NUMBERS.items() if least == 1])
def test_parameters_that_must_be_positive_refuse_zero_and_accept_one(name):
    refused(name, **{name: 0})
    assert getattr(load(**{name: 1}), name) == 1


@pytest.mark.parametrize("name", NULLABLE)
def test_a_rule_that_may_be_absent_takes_null_or_a_positive_number(name):
    assert getattr(load(**{name: None}), name) is None
    refused(name, **{name: 0})
    refused(name, **{name: "19"})


@pytest.mark.parametrize("name", ["test_settings_first", "test_settings_second", "test_settings_during_therapy"])
@pytest.mark.parametrize("value", [[], ["lab"], ["home", "home"], "laboratory", None], ids=repr)
def test_test_settings_are_a_list_of_known_settings(name, value):
    refused(name, **{name: value})


# --- Categories and what refers to them -------------------------------------------------------------------
def test_a_category_needs_every_field_of_known_values():
    categories = raw_parameters()["risk_categories"]
    bad = copy.deepcopy(categories)
    del bad["FRP_ADULT"]["age"]
    refused("risk_categories.FRP_ADULT", risk_categories=bad)
    bad = copy.deepcopy(categories)
    bad["FRP_ADULT"]["age"] = "teen"
    refused("risk_categories.FRP_ADULT.age", risk_categories=bad)
    bad = copy.deepcopy(categories)
    bad["frp_adult"] = bad.pop("FRP_ADULT")
    refused("upper-case", risk_categories=bad)
    refused("at least one", risk_categories={})


def test_a_male_category_cannot_get_pregnant():
    categories = raw_parameters()["risk_categories"]
    categories["MALE_ADULT"]["can_get_pregnant"] = True
    refused("MALE_ADULT", risk_categories=categories)


@pytest.mark.parametrize("name", ["counseling", "authorization_windows", "surveys"])
def test_a_rule_for_a_category_the_rule_set_does_not_have_is_refused(name):
    data = raw_parameters()
    data[name]["FRP_TEEN"] = next(iter(data[name].values()))
    with pytest.raises(InvalidRuleSet, match="FRP_TEEN"):
        RuleParameters.from_dict(data)


def test_every_category_has_an_authorization_window():
    windows = raw_parameters()["authorization_windows"]
    del windows["MALE_CHILD"]
    refused("MALE_CHILD", authorization_windows=windows)


def test_a_window_counting_from_a_pregnancy_test_is_only_for_a_category_that_can_get_pregnant():
    windows = raw_parameters()["authorization_windows"]
    windows["MALE_ADULT"] = {"from": "latest_negative_test", "days": 7, "counting": "elapsed"}
    refused("MALE_ADULT", authorization_windows=windows)


def test_a_window_counting_from_counseling_needs_the_category_counseled():
    windows = raw_parameters()["authorization_windows"]
    windows["FNRP_ADULT"] = {"from": "counseling", "days": 30, "counting": "calendar_days"}
    refused("FNRP_ADULT", authorization_windows=windows)
    windows["MALE_ADULT"] = {"from": "counseling", "days": 30, "counting": "calendar_days"}
    del windows["FNRP_ADULT"]
    windows["FNRP_ADULT"] = {"from": "issue", "days": 30, "counting": "elapsed"}
    assert load(authorization_windows=windows).authorization_windows["MALE_ADULT"].from_ == "counseling"


@pytest.mark.parametrize("window", [
    {"from": "office", "days": 7, "counting": "elapsed"}, {"from": "issue", "days": 0, "counting": "elapsed"},
    {"from": "issue", "days": 7, "counting": "weekdays"}, {"from": "issue", "days": 7},
], ids=repr)
def test_a_window_of_unknown_terms_is_refused(window):
    windows = raw_parameters()["authorization_windows"]
    windows["MALE_ADULT"] = window
    refused("authorization_windows.MALE_ADULT", authorization_windows=windows)


@pytest.mark.parametrize("survey", [{"every": 0, "before_first_prescription": False},
                                    {"every": "month", "before_first_prescription": False},
                                    {"every": "prescription"}], ids=repr)
def test_a_survey_of_unknown_terms_is_refused(survey):
    surveys = raw_parameters()["surveys"]
    surveys["FNRP_ADULT"] = survey
    refused("surveys.FNRP_ADULT", surveys=surveys)


def test_a_category_may_take_no_survey_at_all():
    surveys = raw_parameters()["surveys"]
    del surveys["FNRP_ADULT"]
    assert "FNRP_ADULT" not in load(surveys=surveys).surveys


@pytest.mark.parametrize("counseling", [{"kind": "condom", "required": "every_prescription"},
                                        {"kind": "counseling", "required": "monthly"}], ids=repr)
def test_counseling_of_unknown_terms_is_refused(counseling):
    refused("counseling.MALE_ADULT", counseling={"MALE_ADULT": counseling})


def test_a_method_both_primary_and_secondary_is_refused():
    refused("MALE_CONDOM", contraception_primary_methods={"IUD": "IUD", "MALE_CONDOM": "Condom"})


def test_a_program_with_categories_that_can_get_pregnant_names_a_primary_and_a_secondary_method():
    refused("contraception_primary_methods", contraception_primary_methods={})
    refused("contraception_secondary_methods", contraception_secondary_methods={})


@pytest.mark.parametrize("zones", [[], "America/New_York", ["Mars/Olympus_Mons"], [""], [7]], ids=repr)
def test_calendar_day_time_zones_are_known_time_zones(zones):
    refused("calendar_day_time_zones", calendar_day_time_zones=zones)


def test_first_test_window_that_ends_before_it_starts_is_refused():
    refused("first_test_days_before", first_test_days_before=[15, 14])
    refused("first_test_days_before", first_test_days_before=[10])
    assert load(first_test_days_before=[14, 14]).first_test_days_before == (14, 14)


def test_a_testing_interval_is_an_object_of_positive_numbers_or_null():
    assert load(testing_interval=None).testing_interval is None
    refused("testing_interval", testing_interval={"initial_days": 7, "initial_weeks": 4, "regular_days": 28})
    refused("testing_interval.regular_days",
            testing_interval={"initial_days": 7, "initial_weeks": 4, "regular_days": 0, "irregular_days": 14})


def test_clinical_reminders_of_an_unknown_kind_are_refused():
    refused("clinical_reminders", clinical_reminders=[{"kind": "liver_panel", "label": "x", "weekly_for_weeks": 1,
                                                        "then_every_days": 30}])
    refused("clinical_reminders", clinical_reminders={"kind": "blood_count"})


# --- Derived values --------------------------------------------------------------------------------------
def test_pregnancy_test_lookback_of_the_real_rule_sets():
    # pomalidomide: the 28-day testing interval, plus one day; iPLEDGE: the first of two tests up to 60 days back
    assert PARAMS.pregnancy_test_lookback_days == 29
    assert RuleParameters.from_dict(iso("2021-12-13")).pregnancy_test_lookback_days == 61


def test_pregnancy_test_lookback_covers_every_window_the_gates_use():
    for params in (PARAMS, RuleParameters.from_dict(iso("2021-12-13"))):
        lookback = params.pregnancy_test_lookback_days
        assert lookback > params.first_test_days_before[1]
        assert lookback * 24 > (params.second_test_max_hours_before or 0)
        if params.testing_interval:
            assert lookback > params.testing_interval.regular_days
        windows = [w.days for w in params.authorization_windows.values() if w.from_ == "latest_negative_test"]
        assert lookback > max(windows) + (params.missed_window_lockout_days or 0)


def test_parameters_are_immutable():
    with pytest.raises(FrozenInstanceError):
        PARAMS.max_days_supply = 90
