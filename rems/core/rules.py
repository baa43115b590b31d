"""The parameters of a program's rule set, and their validation.

A rule set is data (JSON in the database, loaded from `rems/program/data/*.json`). Every number the gates use is
here; none is a constant in the gate engine. A rule set that does not validate cannot be loaded, and a
decision made when no valid rule set is in force is denied (`RULE_SET_IN_FORCE`).
"""

from dataclasses import dataclass, fields

RISK_CATEGORIES = ("FRP_ADULT", "FRP_CHILD", "FNRP_ADULT", "FNRP_CHILD", "MALE_ADULT", "MALE_CHILD")
ADULT_CATEGORIES = ("FRP_ADULT", "FNRP_ADULT", "MALE_ADULT")
CONTRACEPTION_METHODS = (
    "IUD", "HORMONAL", "TUBAL_LIGATION", "PARTNER_VASECTOMY", "MALE_CONDOM", "DIAPHRAGM", "CERVICAL_CAP",
)


class InvalidRuleSet(ValueError):
    """The rule set's parameters are missing, of the wrong type, or inconsistent."""


@dataclass(frozen=True)
class RuleParameters:
    # Parties
    prescriber_certification_months: int
    pharmacy_certification_months: int
    adult_age_years: int
    # Risk categories
    reproductive_potential_categories: tuple
    male_categories: tuple
    # Contraception (FRP)
    highly_effective_methods: tuple
    additional_methods: tuple
    contraception_min_days_before_first_prescription: int
    attestation_max_age_days: int
    # Pregnancy tests (FRP)
    pregnancy_test_max_sensitivity_miu_ml: int
    first_test_min_days_before: int
    first_test_max_days_before: int
    second_test_max_hours_before: int
    weekly_testing_weeks: int
    test_interval_days_initial: int
    test_interval_days_regular: int
    test_interval_days_irregular: int
    # Supply and timing
    max_days_supply: int
    max_units_per_day: int
    authorization_validity_days_reproductive: int
    authorization_validity_days_other: int
    dispense_authorization_validity_hours: int
    next_fill_max_remaining_days: int
    # Patient surveys
    survey_every_prescription_categories: tuple
    survey_interval_days: dict

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise InvalidRuleSet("A rule set's parameters are a JSON object.")
        names = {f.name for f in fields(cls)}
        missing = sorted(names - data.keys())
        unknown = sorted(data.keys() - names)
        if missing:
            raise InvalidRuleSet(f"Missing parameters: {', '.join(missing)}.")
        if unknown:
            raise InvalidRuleSet(f"Unknown parameters: {', '.join(unknown)}.")
        values = {}
        for f in fields(cls):
            value = data[f.name]
            if f.type is int:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise InvalidRuleSet(f"{f.name} must be a whole number of 0 or more.")
            elif f.type is tuple:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InvalidRuleSet(f"{f.name} must be a list of names.")
                value = tuple(value)
            elif f.type is dict:
                if not isinstance(value, dict) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values()
                ):
                    raise InvalidRuleSet(f"{f.name} must map names to whole numbers of days.")
            values[f.name] = value
        params = cls(**values)
        params._validate()
        return params

    def _validate(self):
        for name in ("reproductive_potential_categories", "male_categories", "survey_every_prescription_categories"):
            unknown = set(getattr(self, name)) - set(RISK_CATEGORIES)
            if unknown:
                raise InvalidRuleSet(f"{name} names unknown risk categories: {', '.join(sorted(unknown))}.")
        unknown = set(self.survey_interval_days) - set(RISK_CATEGORIES)
        if unknown:
            raise InvalidRuleSet(f"survey_interval_days names unknown risk categories: {', '.join(sorted(unknown))}.")
        uncovered = set(RISK_CATEGORIES) - set(self.survey_every_prescription_categories) - set(self.survey_interval_days)
        if uncovered:
            raise InvalidRuleSet(f"No survey cadence for: {', '.join(sorted(uncovered))}.")
        for name in ("highly_effective_methods", "additional_methods"):
            unknown = set(getattr(self, name)) - set(CONTRACEPTION_METHODS)
            if unknown:
                raise InvalidRuleSet(f"{name} names unknown methods: {', '.join(sorted(unknown))}.")
        if self.first_test_min_days_before > self.first_test_max_days_before:
            raise InvalidRuleSet("first_test_min_days_before is after first_test_max_days_before.")
        positive = (
            "max_days_supply", "max_units_per_day", "authorization_validity_days_reproductive",
            "authorization_validity_days_other", "dispense_authorization_validity_hours",
            "test_interval_days_initial", "test_interval_days_regular", "test_interval_days_irregular",
            "prescriber_certification_months", "pharmacy_certification_months", "attestation_max_age_days",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise InvalidRuleSet(f"{name} must be more than 0.")

    @property
    def pregnancy_test_lookback_days(self):
        """How far back a decision needs pregnancy tests: the widest window any test check looks at."""
        return 1 + max(
            self.first_test_max_days_before,
            self.test_interval_days_initial,
            self.test_interval_days_regular,
            self.test_interval_days_irregular,
            self.authorization_validity_days_reproductive,
        )
