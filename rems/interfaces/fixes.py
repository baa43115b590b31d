"""For each check code, what the person in front of the page can do about a failure, in plain words. The
failure message itself comes from the gate engine and says what was found; this says what to do next. Numbers
come from the rule set the decision was made under, never from here."""

from rems.core.wording import plural


def _days(n):
    return plural(n, "day")


def _window(params, name):
    window = params.authorization_windows.get(name) if params else None
    return _days(window.days) if window else "the program's window"


PRESCRIBER = {
    "RULE_SET_IN_FORCE": lambda p, c: "Nothing can be authorized until the program administrator loads the program's rules.",
    "PRESCRIBER_CERTIFIED": lambda p, c: "Contact the program administrator to certify, renew or reinstate your certification.",
    "PATIENT_ENROLLED": lambda p, c: ("The enrollment must be active and current: ask the program administrator why it "
                                      "is not, or re-enroll with a new agreement."),
    "PREGNANCY_TEST_NEGATIVE": lambda p, c: ("A positive test is on file: stop therapy and follow the pregnancy reporting "
                                             "procedure. No prescription can be authorized."),
    "RISK_CATEGORY_AGREEMENT": lambda p, c: "Record the date the Patient-Prescriber Agreement was signed, for one of the "
                                            "program's categories.",
    "RISK_CATEGORY_AGE": lambda p, c: "Change the patient's risk category (adult or child) with a new agreement.",
    "PRODUCT_IN_PROGRAM": lambda p, c: "Choose one of the program's products.",
    "DAYS_SUPPLY_LIMIT": lambda p, c: f"Prescribe at most {_days(p.max_days_supply)} of supply.",
    "QUANTITY_LIMIT": lambda p, c: (f"Lower the quantity to at most {plural(p.max_units_per_day, 'unit')} per day of "
                                    "supply."),
    "ONE_OPEN_PRESCRIPTION": lambda p, c: "Cancel the open authorization, or wait until it is dispensed or lapses.",
    "NEXT_FILL_TIMING": lambda p, c: (f"Request the next prescription once {_days(p.next_fill_max_remaining_days)} or "
                                      "less of the last supply remain."),
    "CONTRACEPTION_ATTESTED": lambda p, c: "Record a contraception attestation for this prescription.",
    "CONTRACEPTION_METHODS": lambda p, c: ("Record one primary method and one more used together"
                                           + (", or the patient's commitment to continuous abstinence"
                                              if p.contraception_abstinence_allowed else "") + "."),
    "CONTRACEPTION_STARTED": lambda p, c: (f"Contraception must have started at least "
                                           f"{_days(p.contraception_min_days_before_first_prescription)} before the "
                                           "first prescription."),
    "PREGNANCY_TEST_FIRST": lambda p, c: (f"Record a negative pregnancy test collected {p.first_test_days_before[0]} to "
                                          f"{p.first_test_days_before[1]} days before the first prescription."),
    "PREGNANCY_TEST_SECOND": lambda p, c: (
        f"Record a second negative pregnancy test collected within the last {p.second_test_max_hours_before} hours."
        if p.second_test_max_hours_before else
        f"Record a second negative pregnancy test, collected at least {_days(p.first_tests_min_days_apart)} after "
        "the first, in a setting the program accepts."),
    "PREGNANCY_TEST_INTERVAL": lambda p, c: "Record the negative pregnancy test that is due.",
    "PREGNANCY_TEST_LOCKOUT": lambda p, c: (f"After a missed window, wait until {_days(p.missed_window_lockout_days)} "
                                            "after the previous test, then collect a new one."),
    "PREGNANCY_TEST_RECENT": lambda p, c: (f"Record a negative pregnancy test from the authorization's window "
                                           f"({_window(p, c)})."),
    "MALE_COUNSELING_ATTESTED": lambda p, c: "Record a male counseling attestation for this prescription.",
    "COUNSELING_ATTESTED": lambda p, c: "Record the counseling given to the patient.",
    "SURVEY_COMPLETED": lambda p, c: f"Have the patient complete the {p.survey_label}, then record it.",
}

PHARMACY = {
    "MATCH_ATTEMPTS_LIMIT": lambda p, c: "Too many failed attempts: call the program administrator to have the lock cleared.",
    "AUTHORIZATION_FOUND": lambda p, c: "Check the number on the prescription; if it is right, call the prescriber's office.",
    "PHARMACY_CERTIFIED": lambda p, c: ("Your pharmacy's certification in this program is not active: contact the "
                                        "program administrator."),
    "PRESCRIBER_CERTIFIED": lambda p, c: "Do not dispense. The prescriber's office must contact the program administrator.",
    "PATIENT_DOB_MATCH": lambda p, c: "Check the patient's date of birth against an identity document and try again.",
    "PATIENT_ENROLLED": lambda p, c: "Do not dispense. The prescriber has the details.",
    "PREGNANCY_TEST_NEGATIVE": lambda p, c: "Do not dispense. The prescriber has the details.",
    "RISK_CATEGORY_AGREEMENT": lambda p, c: "Do not dispense. The prescriber must update the patient's agreement.",
    "RISK_CATEGORY_AGE": lambda p, c: "Do not dispense. The prescriber must update the patient's risk category.",
    "RISK_CATEGORY_UNCHANGED": lambda p, c: "Do not dispense. The prescriber must request a new prescription authorization.",
    "AUTHORIZATION_NOT_EXPIRED": lambda p, c: "The authorization has lapsed: the prescriber must request a new one.",
    "AUTHORIZATION_UNUSED": lambda p, c: ("This authorization is already held or used; reverse your own earlier RDA if it "
                                          "was yours."),
    "PRODUCT_MATCH": lambda p, c: "Dispense the product on the authorization, or call the prescriber.",
    "QUANTITY_MATCH": lambda p, c: "Dispense at most the authorized quantity.",
    "QUANTITY_LIMIT": lambda p, c: (f"Lower the quantity to at most {plural(p.max_units_per_day, 'unit')} per day of "
                                    "supply."),
    "DAYS_SUPPLY_MATCH": lambda p, c: "Dispense at most the authorized days' supply.",
}

# What a fix says when the rule set is not known (the decision was refused before it was found).
_WITHOUT_RULES = {"RULE_SET_IN_FORCE", "MATCH_ATTEMPTS_LIMIT", "AUTHORIZATION_FOUND"}


def explained(checks, fixes, params=None, category=""):
    """The failed checks first, each with what to do (in the numbers of `params`, the rule set decided under);
    then the passed ones."""
    def fix(check):
        make = fixes.get(check["code"])
        if make is None or (params is None and check["code"] not in _WITHOUT_RULES):
            return ""
        return make(params, category)

    failed = [dict(c, fix=fix(c)) for c in checks if not c["passed"]]
    passed = [dict(c, fix="") for c in checks if c["passed"]]
    return failed, passed
