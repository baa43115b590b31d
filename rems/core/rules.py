"""The parameters of a program's rule set, and their validation.

A rule set is data (JSON in the database, loaded from `rems/program/data/*.json` or over the API). Every number,
category and method name the engine uses is a parameter here; none is a constant in the engine. A rule set that
does not validate (a parameter missing, unknown, or of the wrong type or value) cannot be loaded, and a decision
made when no valid rule set is in force is denied (`RULE_SET_IN_FORCE`). Every parameter is described, with its
source, in docs/programs.md.
"""

from dataclasses import dataclass, fields
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SCHEMA = 2

# What the engine knows how to apply. The names of the things a rule set speaks of are the engine's; which of
# them a program uses, and its numbers, are the rule set's.
AGES = ("adult", "child", "any")
COUNSELING_KINDS = ("male_counseling", "counseling")
COUNSELING_REQUIRED = ("every_prescription", "at_enrollment")
TEST_SETTINGS = ("laboratory", "medical_office", "home")
WINDOW_FROM = ("latest_negative_test", "issue", "counseling")
WINDOW_COUNTING = ("elapsed", "calendar_days")
CLINICAL_REMINDERS = ("blood_count",)


class InvalidRuleSet(ValueError):
    """The rule set's parameters are missing, unknown, of the wrong type, or inconsistent."""


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    can_get_pregnant: bool
    male: bool
    age: str  # adult, child or any


@dataclass(frozen=True)
class Counseling:
    kind: str  # male_counseling or counseling: the attestation that counts
    required: str  # every_prescription or at_enrollment


@dataclass(frozen=True)
class TestingInterval:
    """During therapy, a negative test counts for `initial_days` in the first `initial_weeks` of therapy, then
    for `regular_days` (`irregular_days` with irregular cycles)."""

    initial_days: int
    initial_weeks: int
    regular_days: int
    irregular_days: int


@dataclass(frozen=True)
class Window:
    """How long a prescription authorization holds: `days` from `from_` (the collection of the latest negative
    test, the issue, or the latest counseling), counted as elapsed time or as calendar days (UTC) with the first
    day the day of `from_`."""

    from_: str
    days: int
    counting: str


@dataclass(frozen=True)
class Survey:
    every: int | None  # days between surveys; None: before every prescription
    before_first_prescription: bool


@dataclass(frozen=True)
class ClinicalReminder:
    kind: str
    label: str
    weekly_for_weeks: int
    then_every_days: int


def _fail(name, message):
    raise InvalidRuleSet(f"{name}: {message}")


def _int(name, value, *, minimum=0, nullable=False):
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        _fail(name, f"a whole number of {minimum} or more{' or null' if nullable else ''}")
    return value


def _bool(name, value):
    if not isinstance(value, bool):
        _fail(name, "true or false")
    return value


def _text(name, value):
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        _fail(name, "a text of 1 to 200 characters")
    return value


def _choice(name, value, choices):
    if value not in choices:
        _fail(name, f"one of {', '.join(choices)}")
    return value


def _object(name, value, keys):
    if not isinstance(value, dict):
        _fail(name, "an object")
    missing, unknown = sorted(set(keys) - value.keys()), sorted(value.keys() - set(keys))
    if missing or unknown:
        _fail(name, f"missing {', '.join(missing) or 'nothing'}; unknown {', '.join(unknown) or 'nothing'}")
    return value


def _names(name, value):
    """A map from upper-case names to something."""
    if not isinstance(value, dict):
        _fail(name, "an object keyed by names")
    for key in value:
        if not isinstance(key, str) or not key.replace("_", "").isalnum() or key.upper() != key or len(key) > 40:
            _fail(name, f"{key!r} is not an upper-case name of at most 40 characters")
    return value


def _settings(name, value):
    if not isinstance(value, list) or not value or len(set(value)) != len(value):
        _fail(name, f"a list of test settings, each once, from {', '.join(TEST_SETTINGS)}")
    for setting in value:
        _choice(name, setting, TEST_SETTINGS)
    return tuple(value)


def _frozen(mapping):
    # A plain dict, as the rest of the parameters: a rule set is read, never changed.
    return dict(mapping)


def _time_zones(name, value):
    if not isinstance(value, list) or not value:
        _fail(name, "a non-empty list of IANA time zone names, e.g. [\"America/New_York\"]")
    zones = []
    for zone in value:
        if not isinstance(zone, str) or not zone or len(zone) > 64:
            _fail(name, f"{zone!r} is not a time zone name")
        try:
            zones.append(ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            _fail(name, f"{zone!r} is not a known time zone")
    return tuple(zones)


# --- The parameters ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleParameters:
    schema: int
    # Categories of patients: which can get pregnant, which are male, and for which ages.
    risk_categories: dict  # name -> Category
    adult_age_years: int
    # Parties
    prescriber_certification_months: int
    pharmacy_certification_months: int
    reenrollment_after_days_off_therapy: int | None
    # Contraception (categories that can get pregnant)
    contraception_primary_methods: dict  # name -> label
    contraception_secondary_methods: dict  # name -> label
    contraception_abstinence_allowed: bool
    contraception_min_days_before_first_prescription: int
    attestation_max_age_days: int
    # Counseling the prescriber attests: category -> Counseling
    counseling: dict
    # Pregnancy tests (categories that can get pregnant)
    pregnancy_test_max_sensitivity_miu_ml: int
    first_test_days_before: tuple  # (min, max) days before the first prescription
    first_tests_min_days_apart: int  # between the first and the second test; 0: no minimum
    second_test_max_hours_before: int | None  # None: the authorization window bounds it
    test_settings_first: tuple
    test_settings_second: tuple
    test_settings_during_therapy: tuple
    testing_interval: TestingInterval | None  # None: a recent test before each prescription only
    missed_window_lockout_days: int | None
    # Prescriptions and dispenses
    authorization_windows: dict  # category -> Window
    max_days_supply: int
    max_units_per_day: int
    dispense_authorization_validity_hours: int
    next_fill_max_remaining_days: int
    # Where a window counts calendar days: the time zones of the places the program serves (IANA names). A day is
    # a day where the test was collected, so a calendar-day window ends at its earliest end among them.
    calendar_day_time_zones: tuple
    # Patient surveys: category -> Survey; categories not listed take none
    surveys: dict
    survey_label: str
    # Reminders that are not gates
    clinical_reminders: tuple

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
        if data["schema"] != SCHEMA:
            raise InvalidRuleSet(f"schema: this engine reads rule sets of schema {SCHEMA}.")
        categories = {}
        for name, value in _names("risk_categories", data["risk_categories"]).items():
            where = f"risk_categories.{name}"
            _object(where, value, ("label", "can_get_pregnant", "male", "age"))
            categories[name] = Category(
                name=name, label=_text(f"{where}.label", value["label"]),
                can_get_pregnant=_bool(f"{where}.can_get_pregnant", value["can_get_pregnant"]),
                male=_bool(f"{where}.male", value["male"]), age=_choice(f"{where}.age", value["age"], AGES),
            )
        if not categories:
            _fail("risk_categories", "at least one category")

        def per_category(name, build):
            mapping = _names(name, data[name])
            unknown_categories = sorted(set(mapping) - set(categories))
            if unknown_categories:
                _fail(name, f"names categories the rule set does not have: {', '.join(unknown_categories)}")
            return _frozen({category: build(f"{name}.{category}", value) for category, value in mapping.items()})

        def methods(name):
            mapping = _names(name, data[name])
            return _frozen({method: _text(f"{name}.{method}", label) for method, label in mapping.items()})

        def counseling(where, value):
            _object(where, value, ("kind", "required"))
            return Counseling(kind=_choice(f"{where}.kind", value["kind"], COUNSELING_KINDS),
                              required=_choice(f"{where}.required", value["required"], COUNSELING_REQUIRED))

        def window(where, value):
            _object(where, value, ("from", "days", "counting"))
            return Window(from_=_choice(f"{where}.from", value["from"], WINDOW_FROM),
                          days=_int(f"{where}.days", value["days"], minimum=1),
                          counting=_choice(f"{where}.counting", value["counting"], WINDOW_COUNTING))

        def survey(where, value):
            _object(where, value, ("every", "before_first_prescription"))
            every = value["every"]
            if every != "prescription":
                _int(f"{where}.every", every, minimum=1)
            return Survey(every=None if every == "prescription" else every,
                          before_first_prescription=_bool(f"{where}.before_first_prescription",
                                                          value["before_first_prescription"]))

        first = data["first_test_days_before"]
        if not (isinstance(first, list) and len(first) == 2):
            _fail("first_test_days_before", "[the fewest days, the most days] before the first prescription")
        first = (_int("first_test_days_before", first[0]), _int("first_test_days_before", first[1]))
        if first[0] > first[1]:
            _fail("first_test_days_before", "the fewest days come first")
        interval = data["testing_interval"]
        if interval is not None:
            where = "testing_interval"
            _object(where, interval, ("initial_days", "initial_weeks", "regular_days", "irregular_days"))
            interval = TestingInterval(**{key: _int(f"{where}.{key}", interval[key], minimum=1) for key in interval})
        reminders = data["clinical_reminders"]
        if not isinstance(reminders, list):
            _fail("clinical_reminders", "a list")
        clinical = []
        for i, value in enumerate(reminders):
            where = f"clinical_reminders[{i}]"
            _object(where, value, ("kind", "label", "weekly_for_weeks", "then_every_days"))
            clinical.append(ClinicalReminder(
                kind=_choice(f"{where}.kind", value["kind"], CLINICAL_REMINDERS), label=_text(f"{where}.label", value["label"]),
                weekly_for_weeks=_int(f"{where}.weekly_for_weeks", value["weekly_for_weeks"]),
                then_every_days=_int(f"{where}.then_every_days", value["then_every_days"], minimum=1),
            ))
        params = cls(
            schema=SCHEMA,
            risk_categories=_frozen(categories),
            adult_age_years=_int("adult_age_years", data["adult_age_years"], minimum=1),
            prescriber_certification_months=_int("prescriber_certification_months",
                                                 data["prescriber_certification_months"], minimum=1),
            pharmacy_certification_months=_int("pharmacy_certification_months", data["pharmacy_certification_months"],
                                               minimum=1),
            reenrollment_after_days_off_therapy=_int("reenrollment_after_days_off_therapy",
                                                     data["reenrollment_after_days_off_therapy"], minimum=1,
                                                     nullable=True),
            contraception_primary_methods=methods("contraception_primary_methods"),
            contraception_secondary_methods=methods("contraception_secondary_methods"),
            contraception_abstinence_allowed=_bool("contraception_abstinence_allowed",
                                                   data["contraception_abstinence_allowed"]),
            contraception_min_days_before_first_prescription=_int(
                "contraception_min_days_before_first_prescription", data["contraception_min_days_before_first_prescription"]),
            attestation_max_age_days=_int("attestation_max_age_days", data["attestation_max_age_days"], minimum=1),
            counseling=per_category("counseling", counseling),
            pregnancy_test_max_sensitivity_miu_ml=_int("pregnancy_test_max_sensitivity_miu_ml",
                                                       data["pregnancy_test_max_sensitivity_miu_ml"], minimum=1),
            first_test_days_before=first,
            first_tests_min_days_apart=_int("first_tests_min_days_apart", data["first_tests_min_days_apart"]),
            second_test_max_hours_before=_int("second_test_max_hours_before", data["second_test_max_hours_before"],
                                              minimum=1, nullable=True),
            test_settings_first=_settings("test_settings_first", data["test_settings_first"]),
            test_settings_second=_settings("test_settings_second", data["test_settings_second"]),
            test_settings_during_therapy=_settings("test_settings_during_therapy", data["test_settings_during_therapy"]),
            testing_interval=interval,
            missed_window_lockout_days=_int("missed_window_lockout_days", data["missed_window_lockout_days"], minimum=1,
                                            nullable=True),
            authorization_windows=per_category("authorization_windows", window),
            max_days_supply=_int("max_days_supply", data["max_days_supply"], minimum=1),
            max_units_per_day=_int("max_units_per_day", data["max_units_per_day"], minimum=1),
            dispense_authorization_validity_hours=_int("dispense_authorization_validity_hours",
                                                       data["dispense_authorization_validity_hours"], minimum=1),
            next_fill_max_remaining_days=_int("next_fill_max_remaining_days", data["next_fill_max_remaining_days"]),
            calendar_day_time_zones=_time_zones("calendar_day_time_zones", data["calendar_day_time_zones"]),
            surveys=per_category("surveys", survey),
            survey_label=_text("survey_label", data["survey_label"]),
            clinical_reminders=tuple(clinical),
        )
        params._validate()
        return params

    def _validate(self):
        both = set(self.contraception_primary_methods) & set(self.contraception_secondary_methods)
        if both:
            raise InvalidRuleSet(f"contraception methods both primary and secondary: {', '.join(sorted(both))}.")
        uncovered = sorted(set(self.risk_categories) - set(self.authorization_windows))
        if uncovered:
            raise InvalidRuleSet(f"authorization_windows: no window for {', '.join(uncovered)}.")
        for name, category in self.risk_categories.items():
            if category.can_get_pregnant and category.male:
                raise InvalidRuleSet(f"risk_categories.{name}: a male category cannot get pregnant.")
        for name, window in self.authorization_windows.items():
            if window.from_ == "latest_negative_test" and not self.risk_categories[name].can_get_pregnant:
                raise InvalidRuleSet(f"authorization_windows.{name}: counts from a pregnancy test, but the category "
                                     "has none.")
            if window.from_ == "counseling" and name not in self.counseling:
                raise InvalidRuleSet(f"authorization_windows.{name}: counts from counseling, but the category has none.")
        if any(c.can_get_pregnant for c in self.risk_categories.values()):
            for name in ("contraception_primary_methods", "contraception_secondary_methods"):
                if not getattr(self, name):  # two methods at once: a primary one and one more
                    raise InvalidRuleSet(f"{name}: a program with categories that can get pregnant names at least "
                                         "one.")

    # --- Derived: what the engine asks of the categories ---------------------------------------------------------
    @property
    def reproductive_potential_categories(self):
        return tuple(name for name, c in self.risk_categories.items() if c.can_get_pregnant)

    @property
    def male_categories(self):
        return tuple(name for name, c in self.risk_categories.items() if c.male)

    @property
    def contraception_methods(self):
        """Every method the program knows, primary first: name -> label."""
        return {**self.contraception_primary_methods, **self.contraception_secondary_methods}

    def category(self, name):
        """The category called `name`, or None if the program has none of that name."""
        return self.risk_categories.get(name)

    @property
    def pregnancy_test_lookback_days(self):
        """How far back a decision needs pregnancy tests: the widest window any test check looks at."""
        windows = [w.days + 1 for w in self.authorization_windows.values() if w.from_ == "latest_negative_test"]
        interval = self.testing_interval
        return 1 + max([
            self.first_test_days_before[1],
            *(windows or [0]),
            *((interval.initial_days, interval.regular_days, interval.irregular_days) if interval else ()),
            # A test whose window passed unused locks out the tests of this long after it; the latest test counts
            # only within its own window, so older tests matter to no decision that could pass.
            (self.missed_window_lockout_days or 0) + max(windows or [0]),
        ])

    def certification_period(self, party):
        """How long a certification of a `prescriber` or a `pharmacy` lasts."""
        months = self.prescriber_certification_months if party == "prescriber" else self.pharmacy_certification_months
        return timedelta(days=round(months * 365.25 / 12))
