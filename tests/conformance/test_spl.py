"""Our rule sets against the REMS documents themselves (SPL, in the shared fixtures): every coded interval
and every supply limit of the POMALYST, THALOMID and iPLEDGE documents, and the numbers written in their
timing columns, agree with the bundled rule sets."""

import json
import re

import pytest

from rems.core.rules import RuleParameters
from rems.program.programs import BUNDLED

from .spl import requirements

PRESCRIBER, DISPENSER, PATIENT = "C128538", "C128539", "C128541"
ASSESS, LAB_TEST = "C128507", "C128523"
COUNSELING, QUESTIONNAIRE = "C128524", "C128525"
PRESCRIBE_LIMITED_SUPPLY, DISPENSE_LIMITED_SUPPLY = "C128512", "C128513"
SAFE_USE = "C128526"

# Six calendar months last 181 to 184 days.
SIX_MONTHS_IN_DAYS = range(181, 185)


def rule_sets(slug, *versions):
    data = json.loads((BUNDLED / f"{slug}.json").read_text())
    return {rs["version"]: RuleParameters.from_dict(rs["parameters"]) for rs in data["rule_sets"]
            if not versions or rs["version"] in versions}


def number(pattern, text):
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return [int(group) for group in found.groups()]


THALIDOMIDE_CLASS = [("pomalyst-rems-document-2023-03.xml", "pomalidomide"),
                     ("thalomid-rems-document-2023-03.xml", "thalidomide")]


@pytest.mark.parametrize("document, slug", THALIDOMIDE_CLASS)
def test_every_coded_interval_of_the_thalidomide_class_is_in_the_rule_sets(fixtures, document, slug):
    coded = [r for r in requirements(fixtures / "spl" / document) if r.pause]
    assert len(coded) == 6, coded
    for version, params in rule_sets(slug).items():
        interval = params.testing_interval
        surveys = {name: rule.every for name, rule in params.surveys.items()}
        for requirement in coded:
            value, unit = requirement.pause
            where = (slug, version, requirement)
            if requirement.code in (ASSESS, LAB_TEST) and unit == "wk":
                if "irregular" in requirement.text:
                    assert interval.irregular_days == 7 * value, where
                elif "regular" in requirement.text:
                    assert interval.regular_days == 7 * value, where
                else:  # weekly for the first weeks of therapy
                    assert interval.initial_days == 7 * value, where
                    assert [interval.initial_weeks] == number(r"first (\d+) weeks", requirement.when), where
                if value > 1:
                    assert [interval.initial_weeks] == number(r"after the first (\d+) weeks", requirement.when)
            elif requirement.code in (QUESTIONNAIRE, COUNSELING) and (value, unit) == (6, "mo"):
                # the patient survey every six months (and the counseling on it), for one category
                every = [days for days in surveys.values() if isinstance(days, int)]
                assert len(every) == 1 and every[0] in SIX_MONTHS_IN_DAYS, where
            else:
                pytest.fail(f"a coded interval the rule set does not account for: {where}")


@pytest.mark.parametrize("document, slug", THALIDOMIDE_CLASS)
def test_the_thalidomide_class_supply_test_and_contraception_numbers(fixtures, document, slug):
    found = requirements(fixtures / "spl" / document)
    supply = [r for r in found if r.code == PRESCRIBE_LIMITED_SUPPLY and "supply" in r.text]
    assert supply
    first_tests = next(r for r in found if r.code == LAB_TEST and "10-14" in r.when)
    contraception = next(r for r in found if r.code == SAFE_USE and "contraception" in r.text
                         and r.when.startswith("Before treatment initiation"))
    for version, params in rule_sets(slug).items():
        for requirement in supply:
            assert [params.max_days_supply] == number(r"no more than a (\d+) days", requirement.text), version
        fewest, most, hours = number(r"within (\d+)-(\d+) days and again within (\d+) hours", first_tests.when)
        assert list(params.first_test_days_before) == [fewest, most], version
        assert params.second_test_max_hours_before == hours, version
        weeks = number(r"(\d+) weeks", contraception.when)
        assert [params.contraception_min_days_before_first_prescription] == [7 * w for w in weeks], version


IPLEDGE = "ipledge-rems-document-2023.xml"


def test_ipledge_has_no_coded_interval_and_the_rule_sets_no_testing_interval(fixtures):
    assert not [r for r in requirements(fixtures / "spl" / IPLEDGE) if r.pause]
    for version, params in rule_sets("isotretinoin").items():
        assert params.testing_interval is None, version


def test_ipledge_supply_limits_for_prescriber_and_pharmacy(fixtures):
    found = requirements(fixtures / "spl" / IPLEDGE)
    limits = [r for r in found if r.code in (PRESCRIBE_LIMITED_SUPPLY, DISPENSE_LIMITED_SUPPLY)]
    assert {r.code for r in limits} == {PRESCRIBE_LIMITED_SUPPLY, DISPENSE_LIMITED_SUPPLY}
    for version, params in rule_sets("isotretinoin").items():
        for requirement in limits:
            assert [params.max_days_supply] == number(r"more than a (\d+) days", requirement.text), version


def test_ipledge_tests_windows_and_contraception_as_the_2023_document_words_them(fixtures):
    found = requirements(fixtures / "spl" / IPLEDGE)
    second_test = next(r for r in found if r.code == LAB_TEST and "at least" in r.when)
    during = next(r for r in found if r.code == LAB_TEST and "before each prescription" in r.when
                  and PRESCRIBER in r.stakeholders)
    cannot = next(r for r in found if r.code == SAFE_USE and "office visit" in r.when)
    contraception = next(r for r in found if r.code == SAFE_USE and "use contraception" in r.text
                         and r.when.startswith("Before treatment initiation"))
    comprehension = next(r for r in found if r.code == QUESTIONNAIRE)
    for version, params in rule_sets("isotretinoin").items():
        assert [params.first_tests_min_days_apart] == number(r"at least (\d+) days after the first", second_test.when)
        window = params.authorization_windows["CAN_GET_PREGNANT"]
        assert (window.from_, [window.days]) == ("latest_negative_test",
                                                 number(r"within (\d+) days before", during.when)), version
        assert [params.contraception_min_days_before_first_prescription] == number(r"for (\d+) days",
                                                                                     contraception.when)
        assert "Comprehension Questions" in comprehension.text
        assert params.surveys["CAN_GET_PREGNANT"].every is None, version  # before each prescription
    # the 30 days from the last office visit of a patient who cannot get pregnant: the rules before the 2026
    # modification, which dropped that window
    window = rule_sets("isotretinoin", "2021-12-13")["2021-12-13"].authorization_windows["CANNOT_GET_PREGNANT"]
    assert (window.from_, [window.days]) == ("counseling", number(r"within (\d+) days of your last office", cannot.when))


def test_ipledge_certification_is_renewed_annually(fixtures):
    found = requirements(fixtures / "spl" / IPLEDGE)
    whens = {r.when for r in found}
    assert any("maintain certification to prescribe, annually" in w for w in whens)
    assert any("maintain certification to dispense, annual" in w for w in whens)
    for version, params in rule_sets("isotretinoin").items():
        assert params.prescriber_certification_months == params.pharmacy_certification_months == 12, version
