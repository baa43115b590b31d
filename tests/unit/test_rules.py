"""Rule-set parameters (`rems.core.rules.RuleParameters`): loading, validation and derived values."""

from dataclasses import FrozenInstanceError, fields

import pytest

from rems.core.rules import RISK_CATEGORIES, InvalidRuleSet, RuleParameters

from .helpers import PARAMS, PROGRAM, raw_parameters

FIELD_NAMES = [f.name for f in fields(RuleParameters)]
INT_FIELDS = [f.name for f in fields(RuleParameters) if f.type is int]
LIST_FIELDS = [f.name for f in fields(RuleParameters) if f.type is tuple]
DICT_FIELDS = [f.name for f in fields(RuleParameters) if f.type is dict]
MUST_BE_POSITIVE = [
    "max_days_supply", "max_units_per_day", "authorization_validity_days_reproductive",
    "authorization_validity_days_other", "dispense_authorization_validity_hours", "test_interval_days_initial",
    "test_interval_days_regular", "test_interval_days_irregular", "prescriber_certification_months",
    "pharmacy_certification_months", "attestation_max_age_days",
]


def load(**changes):
    data = raw_parameters()
    data.update(changes)
    return RuleParameters.from_dict(data)


# --- The real rule set -----------------------------------------------------------------------------------
def test_every_rule_set_in_the_program_file_loads():
    for rule_set in PROGRAM["rule_sets"]:
        params = RuleParameters.from_dict(rule_set["parameters"])
        assert isinstance(params, RuleParameters)


def test_the_pomalidomide_rule_set_has_the_documented_numbers():
    # the numbers of docs/rems-rules.md
    assert PARAMS.adult_age_years == 18
    assert set(PARAMS.reproductive_potential_categories) == {"FRP_ADULT", "FRP_CHILD"}
    assert set(PARAMS.male_categories) == {"MALE_ADULT", "MALE_CHILD"}
    assert set(PARAMS.highly_effective_methods) == {"IUD", "HORMONAL", "TUBAL_LIGATION", "PARTNER_VASECTOMY"}
    assert set(PARAMS.additional_methods) == {"MALE_CONDOM", "DIAPHRAGM", "CERVICAL_CAP"}
    assert PARAMS.contraception_min_days_before_first_prescription == 28
    assert PARAMS.pregnancy_test_max_sensitivity_miu_ml == 50
    assert (PARAMS.first_test_min_days_before, PARAMS.first_test_max_days_before) == (10, 14)
    assert PARAMS.second_test_max_hours_before == 24
    assert PARAMS.weekly_testing_weeks == 4
    assert (PARAMS.test_interval_days_initial, PARAMS.test_interval_days_regular,
            PARAMS.test_interval_days_irregular) == (7, 28, 14)
    assert PARAMS.max_days_supply == 28
    assert PARAMS.authorization_validity_days_reproductive == 7
    assert PARAMS.authorization_validity_days_other == 30
    assert PARAMS.dispense_authorization_validity_hours == 24
    assert PARAMS.next_fill_max_remaining_days == 7
    assert PARAMS.prescriber_certification_months == 24
    assert PARAMS.pharmacy_certification_months == 12
    assert {"FRP_ADULT", "FRP_CHILD", "MALE_ADULT", "MALE_CHILD"} <= set(PARAMS.survey_every_prescription_categories)
    assert PARAMS.survey_interval_days == {"FNRP_ADULT": 182}


def test_lists_are_loaded_as_tuples():
    for name in LIST_FIELDS:
        assert isinstance(getattr(PARAMS, name), tuple), name


def test_loading_does_not_depend_on_key_order():
    data = raw_parameters()
    reordered = dict(reversed(list(data.items())))
    assert RuleParameters.from_dict(reordered) == RuleParameters.from_dict(data)


# --- Missing, unknown, wrong-typed -----------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, [], "{}", 42, [("max_days_supply", 28)]])
def test_parameters_that_are_not_an_object_are_refused(value):
    with pytest.raises(InvalidRuleSet):
        RuleParameters.from_dict(value)


def test_invalid_rule_set_is_a_value_error():
    assert issubclass(InvalidRuleSet, ValueError)


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_each_missing_parameter_is_refused_by_name(name):
    data = raw_parameters()
    del data[name]
    with pytest.raises(InvalidRuleSet, match=name):
        RuleParameters.from_dict(data)


def test_empty_parameters_are_refused():
    with pytest.raises(InvalidRuleSet, match="Missing"):
        RuleParameters.from_dict({})


@pytest.mark.parametrize("name", ["max_day_supply", "lockout_days", "MAX_DAYS_SUPPLY"])
def test_unknown_parameter_is_refused_by_name(name):
    data = raw_parameters()
    data[name] = 19
    with pytest.raises(InvalidRuleSet, match=name):
        RuleParameters.from_dict(data)


@pytest.mark.parametrize("name", INT_FIELDS)
@pytest.mark.parametrize("value", ["28", 28.0, True, False, None, -1, [28]], ids=repr)
def test_whole_number_parameter_of_the_wrong_type_or_negative_is_refused(name, value):
    with pytest.raises(InvalidRuleSet, match=name):
        load(**{name: value})


@pytest.mark.parametrize("name", LIST_FIELDS)
@pytest.mark.parametrize("value", ["FRP_ADULT", None, [1, 2], {"FRP_ADULT": 1}, [None]], ids=repr)
def test_list_parameter_of_the_wrong_type_is_refused(name, value):
    with pytest.raises(InvalidRuleSet, match=name):
        load(**{name: value})


@pytest.mark.parametrize(
    "value",
    [[["FNRP_ADULT", 182]], None, {"FNRP_ADULT": "182"}, {"FNRP_ADULT": 182.0}, {"FNRP_ADULT": True},
     {"FNRP_ADULT": 0}, {"FNRP_ADULT": -182}],
    ids=repr,
)
def test_survey_interval_of_the_wrong_type_or_not_positive_is_refused(value):
    assert DICT_FIELDS == ["survey_interval_days"]
    with pytest.raises(InvalidRuleSet, match="survey_interval_days"):
        load(survey_interval_days=value)


# --- Inconsistent values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["reproductive_potential_categories", "male_categories", "survey_every_prescription_categories"]
)
def test_unknown_risk_category_is_refused(name):
    data = raw_parameters()
    data[name] = data[name] + ["FRP_TEEN"]
    with pytest.raises(InvalidRuleSet, match="FRP_TEEN"):
        RuleParameters.from_dict(data)


def test_survey_interval_for_an_unknown_risk_category_is_refused():
    with pytest.raises(InvalidRuleSet, match="ADULT_FEMALE"):
        load(survey_interval_days={"FNRP_ADULT": 182, "ADULT_FEMALE": 30})


@pytest.mark.parametrize("category", RISK_CATEGORIES)
def test_risk_category_without_a_survey_cadence_is_refused(category):
    data = raw_parameters()
    data["survey_every_prescription_categories"] = [
        c for c in data["survey_every_prescription_categories"] if c != category
    ]
    data["survey_interval_days"] = {c: d for c, d in data["survey_interval_days"].items() if c != category}
    with pytest.raises(InvalidRuleSet, match=category):
        RuleParameters.from_dict(data)


def test_survey_cadence_may_be_moved_from_every_prescription_to_an_interval():
    data = raw_parameters()
    data["survey_every_prescription_categories"].remove("FNRP_CHILD")
    data["survey_interval_days"]["FNRP_CHILD"] = 30
    assert RuleParameters.from_dict(data).survey_interval_days == {"FNRP_ADULT": 182, "FNRP_CHILD": 30}


@pytest.mark.parametrize("name", ["highly_effective_methods", "additional_methods"])
def test_unknown_contraception_method_is_refused(name):
    data = raw_parameters()
    data[name] = data[name] + ["RHYTHM"]
    with pytest.raises(InvalidRuleSet, match="RHYTHM"):
        RuleParameters.from_dict(data)


def test_first_test_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(InvalidRuleSet, match="first_test_min_days_before"):
        load(first_test_min_days_before=15, first_test_max_days_before=14)


def test_first_test_window_of_a_single_day_is_accepted():
    params = load(first_test_min_days_before=14, first_test_max_days_before=14)
    assert params.first_test_min_days_before == params.first_test_max_days_before == 14


@pytest.mark.parametrize("name", MUST_BE_POSITIVE)
def test_parameters_that_must_be_positive_refuse_zero(name):
    with pytest.raises(InvalidRuleSet, match=name):
        load(**{name: 0})


@pytest.mark.parametrize("name", MUST_BE_POSITIVE)
def test_parameters_that_must_be_positive_accept_one(name):
    assert getattr(load(**{name: 1}), name) == 1


# --- Derived values --------------------------------------------------------------------------------------
def test_pregnancy_test_lookback_of_the_real_rule_set():
    # the widest window is the 28-day testing interval for regular cycles, plus one day
    assert PARAMS.pregnancy_test_lookback_days == 29


@pytest.mark.parametrize(
    "name",
    ["first_test_max_days_before", "test_interval_days_initial", "test_interval_days_regular",
     "test_interval_days_irregular", "authorization_validity_days_reproductive"],
)
def test_pregnancy_test_lookback_follows_the_widest_window(name):
    assert load(**{name: 60}).pregnancy_test_lookback_days == 61


def test_pregnancy_test_lookback_covers_every_window_the_gates_use():
    params = PARAMS
    lookback = params.pregnancy_test_lookback_days
    assert lookback > params.first_test_max_days_before
    assert lookback * 24 > params.second_test_max_hours_before
    assert lookback > max(params.test_interval_days_initial, params.test_interval_days_regular,
                          params.test_interval_days_irregular)
    assert lookback > params.authorization_validity_days_reproductive


def test_parameters_are_immutable():
    with pytest.raises(FrozenInstanceError):
        PARAMS.max_days_supply = 90
