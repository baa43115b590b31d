"""Shared builders of gate-engine facts for the unit tests (no database, no clock).

Every builder returns facts that the real Pomalidomide rule set (rems/program/data/pomalidomide.json) approves;
a test changes the one fact it is about with `dataclasses.replace` (see the `with_*` helpers) and looks at
the check that fact drives.
"""

import copy
import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import rems
from rems.core.gates import (
    AttestationFact,
    AuthorizationFact,
    CertificationFact,
    DispenseFact,
    DispenseFacts,
    DispenseRequestFact,
    PatientFact,
    PatientHistory,
    PregnancyTestFact,
    PrescriptionFacts,
    PrescriptionRequestFact,
    RuleSetFact,
    SurveyFact,
)
from rems.core.rules import RuleParameters

# --- Time: one fixed moment, never the clock --------------------------------------------------------------
NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

# --- The real rule set ------------------------------------------------------------------------------------
PROGRAM_FILE = Path(rems.__file__).resolve().parent / "program" / "data" / "pomalidomide.json"
PROGRAM = json.loads(PROGRAM_FILE.read_text())
_IN_FORCE = max(
    (rs for rs in PROGRAM["rule_sets"] if datetime.fromisoformat(rs["effective_at"]) <= NOW),
    key=lambda rs: datetime.fromisoformat(rs["effective_at"]),
)


def raw_parameters():
    """A fresh, mutable copy of the JSON parameters of the rule set in force at NOW."""
    return copy.deepcopy(_IN_FORCE["parameters"])


PARAMS = RuleParameters.from_dict(raw_parameters())
RULE_SET_LABEL = f"{PROGRAM['slug']}@{_IN_FORCE['version']}"
RULE_SET = RuleSetFact(label=RULE_SET_LABEL, parameters=PARAMS)

NDC = "59572-0504-21"  # Pomalidomide 4 mg, 21 capsules (normalised 5-4-2)
OTHER_NDC = "59572-0503-21"

FRP_CATEGORIES = ("FRP_ADULT", "FRP_CHILD")
MALE_CATEGORIES = ("MALE_ADULT", "MALE_CHILD")
ALL_CATEGORIES = ("FRP_ADULT", "FRP_CHILD", "FNRP_ADULT", "FNRP_CHILD", "MALE_ADULT", "MALE_CHILD")
ADULT_DOB = date(1980, 3, 1)
CHILD_DOB = date(2012, 3, 1)

# Check codes listed by an approved decision, in the order the engine evaluates them.
BASE_PRESCRIPTION_CODES = (
    "RULE_SET_IN_FORCE",
    "PRESCRIBER_CERTIFIED",
    "PATIENT_ENROLLED",
    "RISK_CATEGORY_AGREEMENT",
    "RISK_CATEGORY_AGE",
    "PRODUCT_IN_PROGRAM",
    "DAYS_SUPPLY_LIMIT",
    "QUANTITY_LIMIT",
    "ONE_OPEN_PRESCRIPTION",
    "NEXT_FILL_TIMING",
)
CONTRACEPTION_CODES = ("CONTRACEPTION_ATTESTED", "CONTRACEPTION_METHODS", "CONTRACEPTION_STARTED")
FRP_FIRST_CODES = (
    BASE_PRESCRIPTION_CODES
    + CONTRACEPTION_CODES
    + ("PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_NEGATIVE", "PREGNANCY_TEST_RECENT")
    + ("SURVEY_COMPLETED",)
)
FRP_THERAPY_CODES = (
    BASE_PRESCRIPTION_CODES
    + CONTRACEPTION_CODES
    + ("PREGNANCY_TEST_INTERVAL", "PREGNANCY_TEST_NEGATIVE", "PREGNANCY_TEST_RECENT")
    + ("SURVEY_COMPLETED",)
)
MALE_CODES = BASE_PRESCRIPTION_CODES + ("MALE_COUNSELING_ATTESTED", "SURVEY_COMPLETED")
FNRP_CODES = BASE_PRESCRIPTION_CODES + ("SURVEY_COMPLETED",)
DISPENSE_CODES = (
    "RULE_SET_IN_FORCE",
    "AUTHORIZATION_FOUND",
    "PHARMACY_CERTIFIED",
    "PATIENT_DOB_MATCH",
    "AUTHORIZATION_NOT_EXPIRED",
    "AUTHORIZATION_UNUSED",
    "PRODUCT_MATCH",
    "QUANTITY_MATCH",
    "QUANTITY_LIMIT",
    "DAYS_SUPPLY_MATCH",
    "PRESCRIBER_CERTIFIED",
    "PATIENT_ENROLLED",
    "RISK_CATEGORY_AGREEMENT",
    "RISK_CATEGORY_AGE",
    "RISK_CATEGORY_UNCHANGED",
)
DISPENSE_FRP_CODES = DISPENSE_CODES + ("PREGNANCY_TEST_NEGATIVE",)


def expected_prescription_codes(category, first):
    if category in FRP_CATEGORIES:
        return FRP_FIRST_CODES if first else FRP_THERAPY_CODES
    if category in MALE_CATEGORIES:
        return MALE_CODES
    return FNRP_CODES


# --- Single facts -----------------------------------------------------------------------------------------
def certification(status="active", expires_at=NOW + timedelta(days=365)):
    return CertificationFact(status=status, expires_at=expires_at)


def negative_test(collected_at, sensitivity=25):
    return PregnancyTestFact(collected_at=collected_at, result="negative", sensitivity_miu_ml=sensitivity)


def positive_test(collected_at, sensitivity=25):
    return PregnancyTestFact(collected_at=collected_at, result="positive", sensitivity_miu_ml=sensitivity)


def contraception(attested_at=NOW - HOUR, methods=("IUD", "MALE_CONDOM"), abstinence=False,
                  started_on=TODAY - timedelta(days=60)):
    return AttestationFact(
        kind="contraception", attested_at=attested_at, methods=tuple(methods), abstinence=abstinence,
        started_on=started_on,
    )


def male_counseling(attested_at=NOW - HOUR):
    return AttestationFact(kind="male_counseling", attested_at=attested_at)


def patient(category="FRP_ADULT", **changes):
    adult = category in ("FRP_ADULT", "FNRP_ADULT", "MALE_ADULT")
    fact = PatientFact(
        status="active",
        status_reason="",
        risk_category=category,
        date_of_birth=ADULT_DOB if adult else CHILD_DOB,
        agreement_signed_on=TODAY - timedelta(days=40),
        irregular_cycles=False,
        therapy_started_at=None,
    )
    return replace(fact, **changes)


def prescription_request(ndc=NDC, product_in_program=True, quantity=28, days_supply=28):
    return PrescriptionRequestFact(ndc=ndc, product_in_program=product_in_program, quantity=quantity,
                                   days_supply=days_supply)


# --- Whole prescription facts -----------------------------------------------------------------------------
THERAPY_STARTED_AT = NOW - timedelta(days=90)
PREVIOUS_PRESCRIPTION_AT = NOW - timedelta(days=22)
LAST_DISPENSED_AT = NOW - timedelta(days=21)  # 28 days of supply: exactly 7 days remain at NOW


def first_prescription_facts(category="FRP_ADULT"):
    """A patient's first prescription in the program: every gate passes at NOW."""
    frp = category in FRP_CATEGORIES
    male = category in MALE_CATEGORIES
    history = PatientHistory(
        tests=(negative_test(NOW - timedelta(days=12)), negative_test(NOW - 2 * HOUR)) if frp else (),
        contraception=contraception() if frp else None,
        male_counseling=male_counseling() if male else None,
    )
    return PrescriptionFacts(
        rule_set=RULE_SET,
        prescriber_certification=certification(),
        patient=patient(category),
        history=history,
        request=prescription_request(),
    )


def therapy_prescription_facts(category="FRP_ADULT"):
    """A later prescription during therapy (started 90 days ago, regular cycles): every gate passes at NOW."""
    frp = category in FRP_CATEGORIES
    male = category in MALE_CATEGORIES
    history = PatientHistory(
        tests=(
            negative_test(NOW - timedelta(days=9)),
            negative_test(NOW - 2 * DAY),
        ) if frp else (),
        contraception=contraception(started_on=TODAY - timedelta(days=150)) if frp else None,
        male_counseling=male_counseling() if male else None,
        latest_survey=SurveyFact(completed_at=NOW - 3 * HOUR),
        previous_prescription_issued_at=PREVIOUS_PRESCRIPTION_AT,
        open_prescription=None,
        last_dispense=DispenseFact(dispensed_at=LAST_DISPENSED_AT, days_supply=28),
    )
    return PrescriptionFacts(
        rule_set=RULE_SET,
        prescriber_certification=certification(),
        patient=patient(category, therapy_started_at=THERAPY_STARTED_AT),
        history=history,
        request=prescription_request(),
    )


def dispense_fact(dispensed_at, days_supply=28):
    return DispenseFact(dispensed_at=dispensed_at, days_supply=days_supply)


def with_history(facts, **changes):
    return replace(facts, history=replace(facts.history, **changes))


def with_patient(facts, **changes):
    return replace(facts, patient=replace(facts.patient, **changes))


def with_request(facts, **changes):
    return replace(facts, request=replace(facts.request, **changes))


# --- Whole dispense facts ---------------------------------------------------------------------------------
AUTHORIZATION_EXPIRES_AT = NOW + 5 * DAY


def authorization(risk_category="FRP_ADULT", status="issued", expires_at=AUTHORIZATION_EXPIRES_AT, ndc=NDC,
                  quantity=28, days_supply=28):
    return AuthorizationFact(
        status=status, expires_at=expires_at, ndc=ndc, quantity=quantity, days_supply=days_supply,
        risk_category=risk_category,
    )


def dispense_facts(category="FRP_ADULT"):
    """A pharmacy asking to dispense exactly what was authorized: every gate passes at NOW."""
    the_patient = patient(category)
    return DispenseFacts(
        rule_set=RULE_SET,
        pharmacy_certification=certification(),
        authorization=authorization(risk_category=category),
        prescriber_certification=certification(),
        patient=the_patient,
        recent_tests=(negative_test(NOW - 2 * DAY),) if category in FRP_CATEGORIES else (),
        request=DispenseRequestFact(date_of_birth=the_patient.date_of_birth, ndc=NDC, quantity=28, days_supply=28),
    )


def with_authorization(facts, **changes):
    return replace(facts, authorization=replace(facts.authorization, **changes))


def with_dispense_request(facts, **changes):
    return replace(facts, request=replace(facts.request, **changes))


# --- Assertions -------------------------------------------------------------------------------------------
def check_of(decision, code):
    """The one check with `code` in the decision."""
    found = [c for c in decision.checks if c.code == code]
    assert len(found) == 1, f"expected exactly one {code} check, got {[c.code for c in decision.checks]}"
    return found[0]


def codes(decision):
    return [c.code for c in decision.checks]


def assert_messages(decision):
    for c in decision.checks:
        assert isinstance(c.message, str) and c.message.strip(), f"{c.code} has no message"


def assert_approved(decision, expected_codes=None):
    failed = [(c.code, c.message) for c in decision.checks if not c.passed]
    assert failed == [], f"expected approval, failed: {failed}"
    assert decision.status == "approved"
    assert decision.approved is True
    assert decision.checks, "an approved decision lists its checks"
    assert all(c.passed is True for c in decision.checks)
    assert decision.failed_codes == []
    assert decision.expires_at is not None
    assert len(set(codes(decision))) == len(decision.checks), "a check code is listed twice"
    if expected_codes is not None:
        assert codes(decision) == list(expected_codes)
    assert_messages(decision)


def assert_denied(decision, *failed_codes):
    """Denied, and the failed checks are exactly `failed_codes` (every one listed, nothing else failing)."""
    assert decision.status == "denied"
    assert decision.approved is False
    assert decision.expires_at is None
    assert sorted(decision.failed_codes) == sorted(failed_codes), (
        f"failed {decision.failed_codes}, expected {list(failed_codes)}: "
        + "; ".join(f"{c.code}: {c.message}" for c in decision.checks if not c.passed)
    )
    assert_messages(decision)
