"""The gate engine: pure functions from loaded facts and `now` to a decision.

Nothing here touches the database or reads the clock. Every check returns a `Check` with a stable code
(documented in docs/checks.md) and a sentence a prescriber or pharmacist can act on. A decision lists every
check evaluated; it is approved only if every one passed. Facts that could not be loaded make their check
fail: the engine never approves on missing data.
"""

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta

from .rules import ADULT_CATEGORIES, RuleParameters
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


@dataclass(frozen=True)
class PregnancyTestFact:
    collected_at: datetime
    result: str
    sensitivity_miu_ml: int


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
    request: PrescriptionRequestFact


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
    """The facts a decision used, as JSON for the compliance log, without names or birth dates."""
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
    """`code` (PRESCRIBER_CERTIFIED, PHARMACY_CERTIFIED): the party's certification is active and not past its end."""
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


def check_patient_enrolled(patient, *, for_pharmacy=False):
    """PATIENT_ENROLLED: the enrollment is active. A pharmacy is told that it may not dispense, not why."""
    code = "PATIENT_ENROLLED"
    if patient.status == "active":
        return Check(code, True, "The patient's enrollment is active.")
    if for_pharmacy:
        # A pharmacy needs to know that it may not dispense, not why: the reason may be clinical.
        return Check(code, False, "The patient's enrollment is not active; nothing may be dispensed. The prescriber "
                                  "has the details.")
    reason = f" ({patient.status_reason})" if patient.status_reason else ""
    return Check(
        code, False,
        f"The patient's enrollment is {patient.status}{reason}; only an active enrollment allows a prescription "
        "or a dispense.",
    )


def _age_on(date_of_birth, on):
    return on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))


def check_risk_category(patient, params, today):
    """RISK_CATEGORY_AGREEMENT (an agreement on file, not dated later than today) and RISK_CATEGORY_AGE (an adult
    category for an adult, a child category for a child, on `today`)."""
    checks = []
    code = "RISK_CATEGORY_AGREEMENT"
    if patient.agreement_signed_on is None or patient.agreement_signed_on > today:
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
    age = _age_on(patient.date_of_birth, today)
    adult = age >= params.adult_age_years
    if (patient.risk_category in ADULT_CATEGORIES) != adult:
        expected = "an adult" if patient.risk_category in ADULT_CATEGORIES else "a child"
        checks.append(Check(
            code, False,
            f"Risk category {patient.risk_category} is for {expected}, but the patient is {age}; change the risk "
            "category with a new Patient-Prescriber Agreement.",
        ))
    else:
        checks.append(Check(code, True, f"Risk category {patient.risk_category} fits the patient's age ({age})."))
    return checks


def qualifying_negatives(tests, params):
    """The negative tests sensitive enough to count under the rule set, the most recent first."""
    return sorted(
        (t for t in tests if t.result == "negative" and t.sensitivity_miu_ml <= params.pregnancy_test_max_sensitivity_miu_ml),
        key=lambda t: t.collected_at,
        reverse=True,
    )


def check_no_positive_test(tests, params, *, for_pharmacy=False):
    """FRP: the latest pregnancy test must not be positive; a positive test since the latest negative one
    blocks everything."""
    code = "PREGNANCY_TEST_NEGATIVE"
    negatives = qualifying_negatives(tests, params)
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
    last = history.last_dispense
    if last is None:
        return Check(code, True, "No earlier dispense in this program.")
    supply_ends_at = last.dispensed_at + timedelta(days=last.days_supply)
    remaining = supply_ends_at - now
    if remaining > timedelta(days=params.next_fill_max_remaining_days):
        earliest = supply_ends_at - timedelta(days=params.next_fill_max_remaining_days)
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
    if attestation.attested_at < now - timedelta(days=params.attestation_max_age_days):
        return False, (
            f"the latest, of {day(attestation.attested_at)}, is more than "
            f"{plural(params.attestation_max_age_days, 'day')} old"
        )
    previous = history.previous_prescription_issued_at
    if previous is not None and attestation.attested_at <= previous:
        return False, f"the latest, of {day(attestation.attested_at)}, was given for an earlier prescription"
    return True, ""


def check_contraception(patient, history, params, now):
    """FRP: CONTRACEPTION_ATTESTED, then (when attested) CONTRACEPTION_METHODS and CONTRACEPTION_STARTED."""
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
    highly_effective = methods & set(params.highly_effective_methods)
    additional = methods & set(params.additional_methods)
    if attestation.abstinence and not methods:
        checks.append(Check("CONTRACEPTION_METHODS", True, "Commitment to continuous abstinence from heterosexual contact."))
    elif highly_effective and additional:
        checks.append(Check(
            "CONTRACEPTION_METHODS", True,
            f"Two methods: {', '.join(sorted(highly_effective))} (highly effective) and {', '.join(sorted(additional))}.",
        ))
    else:
        checks.append(Check(
            "CONTRACEPTION_METHODS", False,
            "Two methods are required at the same time, at least one highly effective (IUD, hormonal, tubal ligation, "
            "partner's vasectomy) and one additional (male condom, diaphragm, cervical cap), or a commitment to "
            "continuous abstinence.",
        ))
    today = now.date()
    if attestation.started_on is None or attestation.started_on > today:
        checks.append(Check("CONTRACEPTION_STARTED", False, "The date contraception started is missing or in the future."))
    elif patient.therapy_started_at is None:
        # FRP: contraception started at least 4 weeks before the first prescription.
        latest_start = today - timedelta(days=params.contraception_min_days_before_first_prescription)
        if attestation.started_on > latest_start:
            checks.append(Check(
                "CONTRACEPTION_STARTED", False,
                f"Contraception started on {attestation.started_on}, less than "
                f"{plural(params.contraception_min_days_before_first_prescription, 'day')} before this first "
                f"prescription; it can be authorized from {attestation.started_on + timedelta(days=params.contraception_min_days_before_first_prescription)}.",
            ))
        else:
            checks.append(Check("CONTRACEPTION_STARTED", True, f"Contraception started on {attestation.started_on}."))
    else:
        checks.append(Check("CONTRACEPTION_STARTED", True, f"Contraception continued since {attestation.started_on}."))
    return checks


def _check_male_counseling(history, params, now):
    current, why = attestation_is_current(history.male_counseling, history, params, now)
    if not current:
        return Check(
            "MALE_COUNSELING_ATTESTED", False,
            f"Condom counseling must be attested for every prescription, and {why}; submit a male counseling attestation.",
        )
    return Check(
        "MALE_COUNSELING_ATTESTED", True, f"Condom counseling attested on {day(history.male_counseling.attested_at)}.",
    )


def testing_interval_days(patient, params, now):
    """FRP during therapy, the days a negative test counts for at `now`: `test_interval_days_initial` for the
    first `weekly_testing_weeks` of therapy, then the regular or the irregular-cycle interval."""
    if now < patient.therapy_started_at + timedelta(weeks=params.weekly_testing_weeks):
        return params.test_interval_days_initial
    if patient.irregular_cycles:
        return params.test_interval_days_irregular
    return params.test_interval_days_regular


def _check_pregnancy_tests(patient, history, params, now):
    checks = []
    negatives = qualifying_negatives(history.tests, params)
    sensitivity = f"sensitive to {params.pregnancy_test_max_sensitivity_miu_ml} mIU/mL or better"
    latest = negatives[0] if negatives else None
    if patient.therapy_started_at is None:
        # FRP before the first prescription: one test 10 to 14 days before, one within the 24 hours before.
        early_from = now - timedelta(days=params.first_test_max_days_before)
        early_to = now - timedelta(days=params.first_test_min_days_before)
        first = next((t for t in negatives if early_from <= t.collected_at <= early_to), None)
        if first:
            checks.append(Check("PREGNANCY_TEST_FIRST", True, f"First negative test collected on {when(first.collected_at)}."))
        else:
            checks.append(Check(
                "PREGNANCY_TEST_FIRST", False,
                f"Before the first prescription a negative pregnancy test ({sensitivity}) must be collected "
                f"{params.first_test_min_days_before} to {params.first_test_max_days_before} days before it, between "
                f"{when(early_from)} and {when(early_to)}; none on file.",
            ))
        second_from = now - timedelta(hours=params.second_test_max_hours_before)
        second = next((t for t in negatives if second_from <= t.collected_at <= now), None)
        if second:
            checks.append(Check("PREGNANCY_TEST_SECOND", True, f"Second negative test collected on {when(second.collected_at)}."))
        else:
            checks.append(Check(
                "PREGNANCY_TEST_SECOND", False,
                f"Before the first prescription a second negative pregnancy test ({sensitivity}) must be collected "
                f"within the {params.second_test_max_hours_before} hours before it, after {when(second_from)}; none on file.",
            ))
    else:
        interval = testing_interval_days(patient, params, now)
        if latest and latest.collected_at >= now - timedelta(days=interval):
            checks.append(Check(
                "PREGNANCY_TEST_INTERVAL", True,
                f"Negative test collected on {when(latest.collected_at)}, within the {interval}-day testing interval.",
            ))
        else:
            seen = f"the latest was collected on {when(latest.collected_at)}" if latest else "none is on file"
            checks.append(Check(
                "PREGNANCY_TEST_INTERVAL", False,
                f"During therapy a negative pregnancy test ({sensitivity}) is required every {plural(interval, 'day')}; "
                f"{seen}.",
            ))
    checks.append(check_no_positive_test(history.tests, params))
    validity = timedelta(days=params.authorization_validity_days_reproductive)
    if latest and latest.collected_at + validity > now:
        checks.append(Check(
            "PREGNANCY_TEST_RECENT", True,
            f"Latest negative pregnancy test collected on {when(latest.collected_at)}; the authorization is valid "
            f"until {when(latest.collected_at + validity)}.",
        ))
    else:
        seen = f"was collected on {when(latest.collected_at)}," if latest else "is not on file, or is"
        checks.append(Check(
            "PREGNANCY_TEST_RECENT", False,
            f"Latest negative pregnancy test {seen} more than {plural(params.authorization_validity_days_reproductive, 'day')} "
            "ago; collect a new test.",
        ))
    return checks


def _check_survey(patient, history, params, now):
    code = "SURVEY_COMPLETED"
    if patient.therapy_started_at is None:
        return Check(code, True, "No patient survey is required before the first prescription.")
    survey = history.latest_survey
    if patient.risk_category in params.survey_every_prescription_categories:
        previous = history.previous_prescription_issued_at
        if survey and (previous is None or survey.completed_at > previous) and survey.completed_at <= now:
            return Check(code, True, f"Patient survey completed on {day(survey.completed_at)}.")
        return Check(
            code, False,
            f"A patient survey is required before each prescription for {patient.risk_category}; none completed since "
            "the last prescription.",
        )
    interval = timedelta(days=params.survey_interval_days[patient.risk_category])
    if now < patient.therapy_started_at + interval:
        return Check(code, True, "No patient survey is due yet in this therapy.")
    if survey and now - interval <= survey.completed_at <= now:
        return Check(code, True, f"Patient survey completed on {day(survey.completed_at)}.")
    return Check(
        code, False,
        f"A patient survey is required every {plural(interval.days, 'day')} for {patient.risk_category}; "
        "none completed in that time.",
    )


def prescription_decide(*, facts: PrescriptionFacts, now: datetime) -> Decision:
    """Decide a prescription authorization (the prescriber survey) at `now`."""
    rule_check = _check_rule_set(facts.rule_set)
    if not rule_check.passed:
        return _decide([rule_check], facts.rule_set.label)
    params = facts.rule_set.parameters
    patient = facts.patient
    today = now.date()
    checks = [
        rule_check,
        check_certified("PRESCRIBER_CERTIFIED", "prescriber", facts.prescriber_certification, now),
        check_patient_enrolled(patient),
        *check_risk_category(patient, params, today),
        *_check_supply(facts.request, params),
        _check_open_prescription(facts.history, now),
        check_next_fill(facts.history, params, now),
    ]
    reproductive = patient.risk_category in params.reproductive_potential_categories
    if reproductive:
        checks += check_contraception(patient, facts.history, params, now)
        checks += _check_pregnancy_tests(patient, facts.history, params, now)
    if patient.risk_category in params.male_categories:
        checks.append(_check_male_counseling(facts.history, params, now))
    checks.append(_check_survey(patient, facts.history, params, now))

    if reproductive:
        negatives = qualifying_negatives(facts.history.tests, params)
        # FRP: valid 7 days from the collection of the latest negative test.
        expires_at = (
            negatives[0].collected_at + timedelta(days=params.authorization_validity_days_reproductive) if negatives else None
        )
    else:
        expires_at = now + timedelta(days=params.authorization_validity_days_other)
    return _decide(checks, facts.rule_set.label, expires_at)


# --- The dispense decision ------------------------------------------------------------------------------
def _check_authorization(authorization, params, now):
    checks = []
    if authorization.status == "expired" or authorization.expires_at <= now:
        why = ""
        if authorization.risk_category in params.reproductive_potential_categories:
            # FRP: the authorization lasts only as long as its pregnancy test is recent, so a lapse means the test
            # went stale; the counter is told so, without more about the patient than the category implies.
            why = (f" An authorization for a female of reproductive potential lasts "
                   f"{plural(params.authorization_validity_days_reproductive, 'day')} from her latest negative "
                   "pregnancy test, which is now too old: a new test is needed before a new authorization.")
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
    checks += _check_authorization(authorization, params, now)
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
        checks.append(check_no_positive_test(facts.recent_tests, params, for_pharmacy=True))
    # The RDA is valid 24 hours, and never beyond the authorization it draws on.
    expires_at = min(now + timedelta(hours=params.dispense_authorization_validity_hours), authorization.expires_at)
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

