"""The gate engine: pure functions from loaded facts and `now` to a decision.

Nothing here touches the database or reads the clock. Every check returns a `Check` with a stable code
(documented in docs/checks.md) and a sentence a prescriber or pharmacist can act on. A decision lists every
check evaluated; it is approved only if every one passed. Facts that could not be loaded make their check
fail: the engine never approves on missing data.
"""

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta

from . import timing
from .rules import RuleParameters
from .wording import day, plural, when

APPROVED = "approved"
DENIED = "denied"
# What a denied dispense request counts as against the pharmacy's failed-match limits (the kinds of the
# pharmacy's failed-match locks): a number that matches no authorization, or a wrong date of birth for one.
FAILED_MATCH_UNKNOWN_NUMBER = "authorization_number"
FAILED_MATCH_BIRTH_DATE = "birth_date"


@dataclass(frozen=True)
class Check:
    code: str
    passed: bool
    message: str


@dataclass(frozen=True)
class Decision:
    status: str
    checks: tuple
    rule_set: str
    expires_at: datetime | None = None
    # A dispense request that named an unknown number or a wrong date of birth: FAILED_MATCH_UNKNOWN_NUMBER or
    # FAILED_MATCH_BIRTH_DATE, counted by the caller toward the pharmacy's limits. Empty otherwise.
    failed_match: str = ""

    @property
    def approved(self):
        return self.status == APPROVED

    @property
    def failed_codes(self):
        return [c.code for c in self.checks if not c.passed]


def _decide(checks, rule_set, expires_at=None, failed_match=""):
    checks = tuple(checks)
    approved = bool(checks) and all(c.passed for c in checks)
    return Decision(
        status=APPROVED if approved else DENIED,
        checks=checks,
        rule_set=rule_set,
        expires_at=expires_at if approved else None,
        failed_match=failed_match,
    )


# --- Facts ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleSetFact:
    label: str
    parameters: RuleParameters | None  # None: no valid rule set in force
    problem: str = ""


@dataclass(frozen=True)
class CertificationFact:
    status: str
    expires_at: datetime


@dataclass(frozen=True)
class PatientFact:
    status: str
    status_reason: str
    risk_category: str
    date_of_birth: date
    agreement_signed_on: date
    irregular_cycles: bool
    therapy_started_at: datetime | None
    time_zone: str = ""  # where calendar days are counted for her (one of the program's); "": all of them


@dataclass(frozen=True)
class PregnancyTestFact:
    collected_at: datetime
    result: str
    sensitivity_miu_ml: int
    setting: str = "laboratory"  # laboratory, medical_office or home


@dataclass(frozen=True)
class AttestationFact:
    kind: str
    attested_at: datetime
    methods: tuple = ()
    abstinence: bool = False
    started_on: date | None = None


@dataclass(frozen=True)
class OpenPrescriptionFact:
    authorization_number: str
    expires_at: datetime


@dataclass(frozen=True)
class DispenseFact:
    dispensed_at: datetime
    days_supply: int


@dataclass(frozen=True)
class SurveyFact:
    completed_at: datetime


@dataclass(frozen=True)
class PatientHistory:
    """What a decision needs of a patient's record. The loader fetches a bounded amount whatever the
    history's length: pregnancy tests from the last `pregnancy_test_lookback_days` only, and the latest of
    everything else."""

    tests: tuple = ()  # PregnancyTestFact, collected in the lookback window
    contraception: AttestationFact | None = None  # the latest
    male_counseling: AttestationFact | None = None  # the latest
    counseling: AttestationFact | None = None  # the latest
    latest_survey: SurveyFact | None = None
    previous_prescription_issued_at: datetime | None = None  # the latest prescription not cancelled
    open_prescription: OpenPrescriptionFact | None = None
    last_dispense: DispenseFact | None = None


@dataclass(frozen=True)
class PrescriptionRequestFact:
    ndc: str
    product_in_program: bool
    quantity: int
    days_supply: int


@dataclass(frozen=True)
class PrescriptionFacts:
    rule_set: RuleSetFact
    prescriber_certification: CertificationFact | None
    patient: PatientFact
    history: PatientHistory
    request: PrescriptionRequestFact | None  # None: what the patient's next prescription needs, whatever is asked


@dataclass(frozen=True)
class AuthorizationFact:
    """The prescription authorization a pharmacy asks to dispense against."""

    status: str  # issued, authorized, dispensed, expired, cancelled
    expires_at: datetime
    ndc: str
    quantity: int
    days_supply: int
    risk_category: str  # the patient's risk category when the authorization was issued


@dataclass(frozen=True)
class DispenseRequestFact:
    date_of_birth: date
    ndc: str
    quantity: int
    days_supply: int


@dataclass(frozen=True)
class DispenseFacts:
    rule_set: RuleSetFact | None  # None when the authorization, hence the program, is unknown
    pharmacy_certification: CertificationFact | None
    authorization: AuthorizationFact | None  # None: no authorization has that number
    prescriber_certification: CertificationFact | None
    patient: PatientFact | None
    recent_tests: tuple  # PregnancyTestFact in the lookback window
    request: DispenseRequestFact
    # Why the pharmacy's attempts are refused after too many failed matches, if they are.
    match_lock: str = ""


def facts_for_log(facts):
    """The facts a decision used, as JSON for the compliance log, without names or birth dates (and without the
    rule set's parameters: its label names them)."""
    if facts.rule_set is not None:
        facts = replace(facts, rule_set=replace(facts.rule_set, parameters=None))
    data = asdict(facts)
    patient = data.get("patient")
    if patient:
        patient.pop("date_of_birth", None)
    request = data.get("request")
    if request and "date_of_birth" in request:
        request.pop("date_of_birth")
    rule_set = data.get("rule_set")
    if rule_set:
        rule_set.pop("parameters", None)
    return data


# --- Shared checks --------------------------------------------------------------------------------------
def check_certified(code, party, certification, now):
    """`code` (PRESCRIBER_CERTIFIED, PHARMACY_CERTIFIED): the party's certification in the program is active and
    not past its end."""
    if certification is None:
        return Check(code, False, f"The {party} is not certified in this program; certification is required.")
    if certification.status != "active":
        return Check(
            code, False, f"The {party}'s certification is {certification.status}; only an active certification passes."
        )
    if certification.expires_at <= now:
        return Check(
            code, False,
            f"The {party}'s certification expired on {day(certification.expires_at)}; it must be renewed.",
        )
    return Check(code, True, f"The {party} is certified until {day(certification.expires_at)}.")


def check_patient_enrolled(patient, params=None, last_dispense=None, now=None, *, for_pharmacy=False):
    """PATIENT_ENROLLED: the enrollment is active, and (where the program requires it) renewed after a long time
    off treatment. A pharmacy is told that it may not dispense, not why."""
    code = "PATIENT_ENROLLED"
    problem = ""
    if patient.status != "active":
        reason = f" ({patient.status_reason})" if patient.status_reason else ""
        problem = (f"The patient's enrollment is {patient.status}{reason}; only an active enrollment allows a "
                   "prescription or a dispense.")
    elif params is not None:
        due_at = timing.reenrollment_due_at(params, patient, last_dispense)
        if due_at is not None and due_at <= now:
            problem = (f"The patient has been off treatment since {day(last_dispense.dispensed_at)}, more than "
                       f"{plural(params.reenrollment_after_days_off_therapy, 'day')}: re-enroll the patient with a "
                       "new Patient-Prescriber Agreement.")
    if not problem:
        return Check(code, True, "The patient's enrollment is active.")
    if for_pharmacy:
        # A pharmacy needs to know that it may not dispense, not why: the reason may be clinical.
        return Check(code, False, "The patient's enrollment is not active; nothing may be dispensed. The prescriber "
                                  "has the details.")
    return Check(code, False, problem)


def age_on(date_of_birth, on):
    """A person's age in whole years on the day `on`."""
    return on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))


def category_fits_age(category, age, params):
    """Whether a category of the rule set is for a person of `age`: an adult category for an adult, a child
    category for a child, and an `any` category for everyone."""
    if category.age == "any":
        return True
    return (category.age == "adult") == (age >= params.adult_age_years)


def check_risk_category(patient, params, today):
    """RISK_CATEGORY_AGREEMENT (an agreement on file for a category of the rule set, not dated later than today)
    and RISK_CATEGORY_AGE (the category is for the patient's age on `today`)."""
    checks = []
    code = "RISK_CATEGORY_AGREEMENT"
    category = params.category(patient.risk_category)
    if category is None:
        checks.append(Check(
            code, False,
            f"The patient's agreement is for {patient.risk_category}, which the rule set in force does not have; "
            f"sign an agreement for one of its categories ({', '.join(params.risk_categories)}).",
        ))
    elif patient.agreement_signed_on is None or patient.agreement_signed_on > today:
        checks.append(Check(
            code, False,
            "No Patient-Prescriber Agreement is on file for the patient's current risk category; sign one and "
            "record its date.",
        ))
    else:
        checks.append(Check(
            code, True, f"Patient-Prescriber Agreement for {patient.risk_category} signed on {patient.agreement_signed_on}.",
        ))
    code = "RISK_CATEGORY_AGE"
    age = age_on(patient.date_of_birth, today)
    if category is None:
        checks.append(Check(code, False, f"Risk category {patient.risk_category} is not one of this program's."))
    elif not category_fits_age(category, age, params):
        expected = "an adult" if category.age == "adult" else "a child"
        checks.append(Check(
            code, False,
            f"Risk category {patient.risk_category} is for {expected}, but the patient is {age}; change the risk "
            "category with a new Patient-Prescriber Agreement.",
        ))
    else:
        checks.append(Check(code, True, f"Risk category {patient.risk_category} fits the patient's age ({age})."))
    return checks


def check_no_positive_test(tests, params, settings=None, *, for_pharmacy=False):
    """PREGNANCY_TEST_NEGATIVE: a positive test since the latest qualifying negative one (sensitive enough, and
    taken in one of `settings`: a test that would not count cannot clear a positive one) blocks everything."""
    code = "PREGNANCY_TEST_NEGATIVE"
    negatives = timing.qualifying_negatives(tests, params, settings)
    latest_negative_at = negatives[0].collected_at if negatives else None
    positives = [t for t in tests if t.result == "positive" and (latest_negative_at is None or t.collected_at >= latest_negative_at)]
    if positives:
        latest = max(positives, key=lambda t: t.collected_at)
        if for_pharmacy:
            return Check(code, False, "A positive pregnancy test is on file; nothing may be dispensed.")
        return Check(
            code, False,
            f"A positive pregnancy test was collected on {day(latest.collected_at)}; no prescription or dispense "
            "is allowed.",
        )
    return Check(code, True, "No positive pregnancy test since the latest negative one.")


# --- The prescription decision --------------------------------------------------------------------------
def _check_rule_set(rule_set):
    if rule_set.parameters is None:
        return Check(
            "RULE_SET_IN_FORCE", False,
            f"No valid rule set is in force for this program ({rule_set.problem or 'none loaded'}); nothing can be "
            "authorized until the program administrator loads one.",
        )
    return Check("RULE_SET_IN_FORCE", True, f"Decided under rule set {rule_set.label}.")


def _check_supply(request, params):
    checks = []
    if request.product_in_program:
        checks.append(Check("PRODUCT_IN_PROGRAM", True, f"NDC {request.ndc} is a product of this program."))
    else:
        checks.append(Check(
            "PRODUCT_IN_PROGRAM", False, f"NDC {request.ndc} is not a product of this program; prescribe one of its products.",
        ))
    if 1 <= request.days_supply <= params.max_days_supply:
        checks.append(Check(
            "DAYS_SUPPLY_LIMIT", True, f"{request.days_supply} days of supply is within the {params.max_days_supply}-day limit.",
        ))
    else:
        checks.append(Check(
            "DAYS_SUPPLY_LIMIT", False,
            f"{request.days_supply} days of supply is more than the {params.max_days_supply} days allowed per "
            "prescription (no refills).",
        ))
    limit = request.days_supply * params.max_units_per_day
    if 1 <= request.quantity <= limit:
        checks.append(Check("QUANTITY_LIMIT", True, f"Quantity {request.quantity} fits {request.days_supply} days of supply."))
    else:
        checks.append(Check(
            "QUANTITY_LIMIT", False,
            f"Quantity {request.quantity} is more than {limit} ({params.max_units_per_day} a day for "
            f"{request.days_supply} days).",
        ))
    return checks


def _check_open_prescription(history, now):
    code = "ONE_OPEN_PRESCRIPTION"
    open_rx = history.open_prescription
    if open_rx is not None and open_rx.expires_at > now:
        return Check(
            code, False,
            f"Prescription authorization {open_rx.authorization_number} is still open until "
            f"{when(open_rx.expires_at)}; cancel it or let it be dispensed first.",
        )
    return Check(code, True, "The patient has no other open prescription authorization.")


def check_next_fill(history, params, now):
    """NEXT_FILL_TIMING: a new prescription only once at most `next_fill_max_remaining_days` of the supply last
    dispensed remain."""
    code = "NEXT_FILL_TIMING"
    earliest = timing.next_fill_from(params, history.last_dispense)
    if earliest is None:
        return Check(code, True, "No earlier dispense in this program.")
    if now < earliest:
        return Check(
            code, False,
            f"More than {plural(params.next_fill_max_remaining_days, 'day')} of the last dispensed supply remain; "
            f"the next prescription can be authorized from {when(earliest)}.",
        )
    return Check(code, True, "The last dispensed supply is nearly used up.")


def attestation_is_current(attestation, history, params, now):
    """Whether an attestation can count for the next prescription: on file, not in the future, younger than
    `attestation_max_age_days`, and given after the previous prescription. Returns (current, why not)."""
    if attestation is None:
        return False, "none is on file"
    if attestation.attested_at > now:
        return False, "the latest is dated in the future"
    if now >= timing.attestation_fails_at(params, attestation.attested_at):
        return False, (
            f"the latest, of {day(attestation.attested_at)}, is more than "
            f"{plural(params.attestation_max_age_days, 'day')} old"
        )
    previous = history.previous_prescription_issued_at
    if previous is not None and attestation.attested_at <= previous:
        return False, f"the latest, of {day(attestation.attested_at)}, was given for an earlier prescription"
    return True, ""


def _methods_sentence(params):
    primary = ", ".join(params.contraception_primary_methods.values())
    secondary = ", ".join(params.contraception_secondary_methods.values())
    sentence = f"Two methods are required at the same time, at least one primary ({primary})"
    if secondary:
        sentence += f" and one more ({secondary})"
    if params.contraception_abstinence_allowed:
        sentence += ", or a commitment to continuous abstinence"
    return sentence + "."


def check_contraception(patient, history, params, now):
    """A patient who can get pregnant: CONTRACEPTION_ATTESTED, then (when attested) CONTRACEPTION_METHODS and
    CONTRACEPTION_STARTED."""
    checks = []
    attestation = history.contraception
    current, why = attestation_is_current(attestation, history, params, now)
    if not current:
        checks.append(Check(
            "CONTRACEPTION_ATTESTED", False,
            f"Contraception must be attested for every prescription, and {why}; submit a contraception attestation.",
        ))
        return checks
    checks.append(Check("CONTRACEPTION_ATTESTED", True, f"Contraception attested on {day(attestation.attested_at)}."))
    methods = set(attestation.methods)
    primary = sorted(methods & set(params.contraception_primary_methods))
    secondary = sorted(methods & set(params.contraception_secondary_methods))
    if attestation.abstinence and not methods and params.contraception_abstinence_allowed:
        checks.append(Check("CONTRACEPTION_METHODS", True, "Commitment to continuous abstinence from heterosexual contact."))
    elif primary and secondary:
        checks.append(Check(
            "CONTRACEPTION_METHODS", True, f"Two methods: {', '.join(primary)} (primary) and {', '.join(secondary)}.",
        ))
    else:
        checks.append(Check("CONTRACEPTION_METHODS", False, _methods_sentence(params)))
    today = now.date()
    lead_in = params.contraception_min_days_before_first_prescription
    if attestation.started_on is None or attestation.started_on > today:
        checks.append(Check("CONTRACEPTION_STARTED", False, "The date contraception started is missing or in the future."))
    elif patient.therapy_started_at is None:
        # Before the first prescription contraception must have started `lead_in` days before it.
        ready_on = timing.contraception_ready_on(params, attestation.started_on)
        if ready_on > today:
            checks.append(Check(
                "CONTRACEPTION_STARTED", False,
                f"Contraception started on {attestation.started_on}, less than {plural(lead_in, 'day')} before this "
                f"first prescription; it can be authorized from {ready_on}.",
            ))
        else:
            checks.append(Check("CONTRACEPTION_STARTED", True, f"Contraception started on {attestation.started_on}."))
    else:
        checks.append(Check("CONTRACEPTION_STARTED", True, f"Contraception continued since {attestation.started_on}."))
    return checks


_COUNSELING = {
    "male_counseling": ("MALE_COUNSELING_ATTESTED", "Condom counseling", "a male counseling attestation"),
    "counseling": ("COUNSELING_ATTESTED", "Counseling", "a counseling attestation"),
}


def check_counseling(patient, history, params, now):
    """MALE_COUNSELING_ATTESTED or COUNSELING_ATTESTED, as the category's counseling requires: attested for every
    prescription, or once, at enrollment. None when the category needs none."""
    counseling = params.counseling.get(patient.risk_category)
    if counseling is None:
        return None
    code, what, form = _COUNSELING[counseling.kind]
    attestation = history.male_counseling if counseling.kind == "male_counseling" else history.counseling
    if counseling.required == "at_enrollment":
        if attestation is None or attestation.attested_at > now:
            return Check(code, False, f"{what} at enrollment is not on file; submit {form}.")
        return Check(code, True, f"{what} attested on {day(attestation.attested_at)}, at enrollment.")
    current, why = attestation_is_current(attestation, history, params, now)
    if not current:
        return Check(code, False, f"{what} must be attested for every prescription, and {why}; submit {form}.")
    return Check(code, True, f"{what} attested on {day(attestation.attested_at)}.")


def _sensitivity(params):
    return f"sensitive to {params.pregnancy_test_max_sensitivity_miu_ml} mIU/mL or better"


def _settings(settings):
    names = {"laboratory": "a laboratory", "medical_office": "a medical office", "home": "at home"}
    return " or ".join(names[s] for s in settings)


def _why_none(tests, params, settings, since=None, until=None):
    """Why no test counts, in words: too little sensitivity or the wrong setting are worth saying."""
    near = [t for t in tests if t.result == "negative"
            and (since is None or t.collected_at >= since) and (until is None or t.collected_at <= until)]
    if any(t.sensitivity_miu_ml > params.pregnancy_test_max_sensitivity_miu_ml for t in near):
        worst = max(t.sensitivity_miu_ml for t in near)
        return f"a test on file is sensitive only to {worst} mIU/mL"
    if any(t.setting not in settings for t in near):
        return f"a test on file was not taken in {_settings(settings)}"
    return "none is on file"


def _check_first_tests(patient, history, params, now):
    """Before the first prescription: PREGNANCY_TEST_FIRST and PREGNANCY_TEST_SECOND."""
    checks = []
    since, until = timing.first_test_window(params, now)
    firsts = [t for t in timing.qualifying_negatives(history.tests, params, params.test_settings_first)
              if since <= t.collected_at <= until]
    first = firsts[-1] if firsts else None  # the earliest in the window: the most room for a second one
    fewest, most = params.first_test_days_before
    if first:
        checks.append(Check("PREGNANCY_TEST_FIRST", True, f"First negative test collected on {when(first.collected_at)}."))
    else:
        checks.append(Check(
            "PREGNANCY_TEST_FIRST", False,
            f"Before the first prescription a negative pregnancy test ({_sensitivity(params)}, taken in "
            f"{_settings(params.test_settings_first)}) must be collected {fewest} to {most} days before it, between "
            f"{when(since)} and {when(until)}; {_why_none(history.tests, params, params.test_settings_first, since, until)}.",
        ))
    seconds = [t for t in timing.qualifying_negatives(history.tests, params, params.test_settings_second)
               if t.collected_at <= now and (first is None or t.collected_at > first.collected_at)]
    hours = params.second_test_max_hours_before
    if hours is not None:
        seconds = [t for t in seconds if now < timing.second_test_fails_at(params, t.collected_at)]
    apart = timedelta(days=params.first_tests_min_days_apart)
    if apart:
        seconds = [t for t in seconds if first is not None and t.collected_at >= first.collected_at + apart]
    second = seconds[0] if seconds else None
    if second:
        checks.append(Check("PREGNANCY_TEST_SECOND", True, f"Second negative test collected on {when(second.collected_at)}."))
    else:
        rules = []
        if hours is not None:
            rules.append(f"within the {hours} hours before it, after {when(now - timedelta(hours=hours))}")
        if apart:
            rules.append(f"at least {plural(params.first_tests_min_days_apart, 'day')} after the first")
        checks.append(Check(
            "PREGNANCY_TEST_SECOND", False,
            f"Before the first prescription a second negative pregnancy test ({_sensitivity(params)}, taken in "
            f"{_settings(params.test_settings_second)}) must be collected {', '.join(rules) or 'after the first'}; "
            f"{_why_none(history.tests, params, params.test_settings_second, since=first.collected_at if first else None)}.",
        ))
    return checks


def _check_interval(patient, history, params, now):
    """During therapy, where the program has a testing interval: PREGNANCY_TEST_INTERVAL."""
    negatives = timing.qualifying_negatives(history.tests, params, params.test_settings_during_therapy)
    latest = negatives[0] if negatives else None
    # the interval the latest test counts for; with none, the one in force now
    interval = (timing.interval_test_days(patient, params, latest.collected_at) if latest
                else timing.testing_interval_days(patient, params, now))
    if latest and now < timing.interval_test_fails_at(patient, params, latest.collected_at):
        return Check(
            "PREGNANCY_TEST_INTERVAL", True,
            f"Negative test collected on {when(latest.collected_at)}, within the {interval}-day testing interval.",
        )
    seen = f"the latest was collected on {when(latest.collected_at)}" if latest else (
        _why_none(history.tests, params, params.test_settings_during_therapy))
    return Check(
        "PREGNANCY_TEST_INTERVAL", False,
        f"During therapy a negative pregnancy test ({_sensitivity(params)}, taken in "
        f"{_settings(params.test_settings_during_therapy)}) is required every {plural(interval, 'day')}; {seen}.",
    )


def check_pregnancy_tests(patient, history, params, now):
    """A patient who can get pregnant: before therapy PREGNANCY_TEST_FIRST and _SECOND, during therapy
    PREGNANCY_TEST_INTERVAL (where the program has an interval); then PREGNANCY_TEST_LOCKOUT (where the program
    has one), PREGNANCY_TEST_NEGATIVE and PREGNANCY_TEST_RECENT."""
    settings = params.test_settings_during_therapy if patient.therapy_started_at else params.test_settings_second
    checks = []
    if patient.therapy_started_at is None:
        checks += _check_first_tests(patient, history, params, now)
    elif params.testing_interval is not None:
        checks.append(_check_interval(patient, history, params, now))
    negatives = timing.qualifying_negatives(history.tests, params, settings)
    latest = negatives[0] if negatives else None
    if params.missed_window_lockout_days:
        locked_until = timing.lockout_until(params, history, patient, latest, settings)
        if locked_until is not None:
            checks.append(Check(
                "PREGNANCY_TEST_LOCKOUT", False,
                f"The window of the test of {day(locked_until - timedelta(days=params.missed_window_lockout_days))} "
                f"closed with no prescription: the next test counts only if collected at least "
                f"{plural(params.missed_window_lockout_days, 'day')} after it, from {when(locked_until)}.",
            ))
        else:
            checks.append(Check("PREGNANCY_TEST_LOCKOUT", True, "No missed window holds the latest test back."))
    checks.append(check_no_positive_test(history.tests, params, settings))
    window = params.authorization_windows[patient.risk_category]
    if latest and now < timing.recent_test_fails_at(params, patient, latest.collected_at):
        checks.append(Check(
            "PREGNANCY_TEST_RECENT", True,
            f"Latest negative pregnancy test collected on {when(latest.collected_at)}; the authorization is valid "
            f"until {when(timing.recent_test_fails_at(params, patient, latest.collected_at))}.",
        ))
    else:
        counted = (f"{plural(window.days, 'day')} (the day of collection is day 1)"
                   if window.counting == "calendar_days" else plural(window.days, "day"))
        seen = f"was collected on {when(latest.collected_at)}," if latest else "is not on file, or is"
        checks.append(Check(
            "PREGNANCY_TEST_RECENT", False,
            f"Latest negative pregnancy test {seen} more than {counted} ago; collect a new test.",
        ))
    return checks


def check_survey(patient, history, params, now):
    code = "SURVEY_COMPLETED"
    label = params.survey_label
    survey_rule = params.surveys.get(patient.risk_category)
    if survey_rule is None:
        return Check(code, True, f"{patient.risk_category} needs no {label}.")
    if patient.therapy_started_at is None and not survey_rule.before_first_prescription:
        return Check(code, True, f"The first prescription needs no {label}.")
    survey = history.latest_survey
    if survey is not None and survey.completed_at > now:
        survey = None  # a survey dated in the future does not count
    if survey_rule.every is None:
        if survey and timing.counts_for_next_prescription(survey.completed_at, history, now):
            return Check(code, True, f"{label.capitalize()} completed on {day(survey.completed_at)}.")
        return Check(
            code, False,
            f"Each prescription for {patient.risk_category} needs the {label} completed since the previous one; "
            "none is on file.",
        )
    if patient.therapy_started_at is not None and now < patient.therapy_started_at + timedelta(days=survey_rule.every):
        return Check(code, True, f"Therapy started less than {plural(survey_rule.every, 'day')} ago: no {label} "
                                 "due yet.")
    fails_at = timing.survey_fails_at(params, patient, survey.completed_at if survey else None)
    if fails_at is not None and now < fails_at:
        return Check(code, True, f"{label.capitalize()} completed on {day(survey.completed_at)}.")
    return Check(
        code, False,
        f"{patient.risk_category} needs the {label} every {plural(survey_rule.every, 'day')}; none completed in "
        "that time.",
    )


def prescription_decide(*, facts: PrescriptionFacts, now: datetime) -> Decision:
    """Decide a prescription authorization (the prescriber survey) at `now`. Without a request (`facts.request`
    None), the status of the patient's requirements: every check but those of a request (its product, quantity
    and days' supply) and of the open authorization a new one would replace."""
    rule_check = _check_rule_set(facts.rule_set)
    if not rule_check.passed:
        return _decide([rule_check], facts.rule_set.label)
    params = facts.rule_set.parameters
    patient = facts.patient
    history = facts.history
    today = now.date()
    checks = [
        rule_check,
        check_certified("PRESCRIBER_CERTIFIED", "prescriber", facts.prescriber_certification, now),
        check_patient_enrolled(patient, params, history.last_dispense, now),
        *check_risk_category(patient, params, today),
    ]
    category = params.category(patient.risk_category)
    if category is None:
        # A category the rule set does not have: nothing else can be judged under it.
        return _decide(checks, facts.rule_set.label)
    if facts.request is not None:
        checks += [*_check_supply(facts.request, params), _check_open_prescription(history, now)]
    checks.append(check_next_fill(history, params, now))
    if category.can_get_pregnant:
        checks += check_contraception(patient, history, params, now)
        checks += check_pregnancy_tests(patient, history, params, now)
    counseling = check_counseling(patient, history, params, now)
    if counseling is not None:
        checks.append(counseling)
    checks.append(check_survey(patient, history, params, now))

    settings = params.test_settings_during_therapy if patient.therapy_started_at else params.test_settings_second
    negatives = timing.qualifying_negatives(history.tests, params, settings)
    counseling_rule = params.counseling.get(patient.risk_category)
    counseled = None
    if counseling_rule is not None:
        counseled = history.male_counseling if counseling_rule.kind == "male_counseling" else history.counseling
    expires_at = timing.authorization_expires_at(
        params, patient, issued_at=now,
        latest_negative_at=negatives[0].collected_at if negatives else None,
        counseling_at=counseled.attested_at if counseled else None,
    )
    return _decide(checks, facts.rule_set.label, expires_at)


# --- The dispense decision ------------------------------------------------------------------------------
def check_authorization(authorization, params, now):
    checks = []
    if authorization.status == "expired" or authorization.expires_at <= now:
        why = ""
        category = params.category(authorization.risk_category)
        window = params.authorization_windows.get(authorization.risk_category)
        if category is not None and window is not None and window.from_ == "latest_negative_test":
            # The authorization lasts only as long as its pregnancy test is recent, so a lapse means the test went
            # stale; the counter is told so, without more about the patient than the category implies.
            counted = " (the day of the test being day 1)" if window.counting == "calendar_days" else ""
            why = (f" An authorization for a patient who can get pregnant lasts {plural(window.days, 'day')}{counted} "
                   "from her latest negative pregnancy test, which is now too old: a new test is needed before a new "
                   "authorization.")
        checks.append(Check(
            "AUTHORIZATION_NOT_EXPIRED", False,
            f"The prescription authorization expired on {when(authorization.expires_at)}; the prescriber must "
            f"obtain a new one.{why}",
        ))
    else:
        checks.append(Check(
            "AUTHORIZATION_NOT_EXPIRED", True, f"The prescription authorization is valid until {when(authorization.expires_at)}.",
        ))
    unused_messages = {
        "issued": None,
        "expired": None,
        "authorized": "A dispense authorization is already held for this prescription authorization; one dispense "
        "per authorization.",
        "dispensed": "This prescription authorization has already been dispensed; one dispense per authorization.",
        "cancelled": "This prescription authorization was cancelled (by the prescriber, or when its dispense was "
        "reversed); the prescriber must obtain a new one.",
    }
    problem = unused_messages.get(authorization.status, "This prescription authorization cannot be dispensed.")
    if problem:
        checks.append(Check("AUTHORIZATION_UNUSED", False, problem))
    else:
        checks.append(Check("AUTHORIZATION_UNUSED", True, "No dispense has been authorized or made against it."))
    return checks


def _check_dispense_request(authorization, request, params):
    checks = []
    if request.ndc == authorization.ndc:
        checks.append(Check("PRODUCT_MATCH", True, f"NDC {request.ndc} is the authorized product."))
    else:
        checks.append(Check(
            "PRODUCT_MATCH", False, f"NDC {request.ndc} is not the authorized product ({authorization.ndc}).",
        ))
    if 1 <= request.quantity <= authorization.quantity:
        checks.append(Check("QUANTITY_MATCH", True, f"Quantity {request.quantity} is within the authorized {authorization.quantity}."))
    else:
        checks.append(Check(
            "QUANTITY_MATCH", False, f"Quantity {request.quantity} is more than the authorized {authorization.quantity}.",
        ))
    # The supply stated must fit the quantity, since the next fill counts from it.
    limit = request.days_supply * params.max_units_per_day
    if request.quantity <= limit:
        checks.append(Check("QUANTITY_LIMIT", True, f"Quantity {request.quantity} fits {request.days_supply} days of supply."))
    else:
        checks.append(Check(
            "QUANTITY_LIMIT", False,
            f"Quantity {request.quantity} is more than {limit} ({params.max_units_per_day} a day for "
            f"{request.days_supply} days); state the days of supply the quantity lasts.",
        ))
    if 1 <= request.days_supply <= authorization.days_supply:
        checks.append(Check(
            "DAYS_SUPPLY_MATCH", True, f"{request.days_supply} days of supply is within the authorized {authorization.days_supply}.",
        ))
    else:
        checks.append(Check(
            "DAYS_SUPPLY_MATCH", False,
            f"{request.days_supply} days of supply is more than the authorized {authorization.days_supply}.",
        ))
    return checks


def dispense_decide(*, facts: DispenseFacts, now: datetime) -> Decision:
    """Decide a pharmacy dispense authorization at `now`: every gate is checked again at this moment."""
    if facts.match_lock:
        # Too many wrong birth dates or unknown numbers: nothing is looked at until an administrator clears it.
        return _decide([Check("MATCH_ATTEMPTS_LIMIT", False, facts.match_lock)], "")
    authorization = facts.authorization
    if authorization is None or facts.patient is None or facts.rule_set is None:
        # Without the authorization the program, and so the rule set, is unknown: nothing else can be checked.
        return _decide([Check(
            "AUTHORIZATION_FOUND", False,
            "No prescription authorization has this number; check the number on the prescription.",
        )], "", failed_match=FAILED_MATCH_UNKNOWN_NUMBER)
    rule_check = _check_rule_set(facts.rule_set)
    if not rule_check.passed:
        return _decide([rule_check], facts.rule_set.label)
    params = facts.rule_set.parameters
    checks = [
        rule_check,
        Check("AUTHORIZATION_FOUND", True, "The prescription authorization was found."),
        check_certified("PHARMACY_CERTIFIED", "pharmacy", facts.pharmacy_certification, now),
    ]
    failed_match = ""
    if facts.request.date_of_birth == facts.patient.date_of_birth:
        checks.append(Check("PATIENT_DOB_MATCH", True, "The date of birth matches the patient's."))
    else:
        checks.append(Check(
            "PATIENT_DOB_MATCH", False,
            "The date of birth does not match the patient's on this authorization; check the patient's identity.",
        ))
        failed_match = FAILED_MATCH_BIRTH_DATE
    if not all(c.passed for c in checks):
        # A pharmacy that is not certified, or does not know the patient's date of birth, learns nothing more
        # about the patient than that.
        return _decide(checks, facts.rule_set.label, failed_match=failed_match)
    checks += check_authorization(authorization, params, now)
    checks += _check_dispense_request(authorization, facts.request, params)
    checks.append(check_certified("PRESCRIBER_CERTIFIED", "prescriber", facts.prescriber_certification, now))
    checks.append(check_patient_enrolled(facts.patient, for_pharmacy=True))
    checks += check_risk_category(facts.patient, params, now.date())
    if facts.patient.risk_category == authorization.risk_category:
        checks.append(Check(
            "RISK_CATEGORY_UNCHANGED", True, f"The patient's risk category is still {authorization.risk_category}.",
        ))
    else:
        # What was attested and tested for the prescription was for the old category.
        checks.append(Check(
            "RISK_CATEGORY_UNCHANGED", False,
            f"The authorization was issued for {authorization.risk_category}, but the patient is now "
            f"{facts.patient.risk_category}; the prescriber must obtain a new authorization.",
        ))
    if facts.patient.risk_category in params.reproductive_potential_categories:
        settings = (params.test_settings_during_therapy if facts.patient.therapy_started_at
                    else params.test_settings_second)
        checks.append(check_no_positive_test(facts.recent_tests, params, settings, for_pharmacy=True))
    expires_at = timing.dispense_authorization_expires_at(params, now, authorization.expires_at)
    return _decide(checks, facts.rule_set.label, expires_at)


def dispense_lost_race(decision: Decision) -> Decision:
    """An approved dispense decision whose authorization another request took first (an RDA or a cancellation
    committed between the facts being read and the authorization being taken): denied by AUTHORIZATION_UNUSED."""
    checks = tuple(
        Check(
            "AUTHORIZATION_UNUSED", False,
            "Another request took this prescription authorization a moment ago (a dispense authorization or a "
            "cancellation); one dispense per authorization.",
        ) if c.code == "AUTHORIZATION_UNUSED" else c
        for c in decision.checks
    )
    return replace(decision, status=DENIED, checks=checks, expires_at=None)


def as_dict(check: Check):
    """A check as JSON: `code`, `passed`, `message`."""
    return {"code": check.code, "passed": check.passed, "message": check.message}


def checks_as_json(decision: Decision):
    """Every check of a decision as JSON, in order: what the API answers and the compliance log records."""
    return [as_dict(c) for c in decision.checks]

