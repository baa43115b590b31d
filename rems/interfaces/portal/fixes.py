"""For each check code, what the person in front of the page can do about a failure, in plain words. The
failure message itself comes from the gate engine and says what was found; this says what to do next."""

PRESCRIBER = {
    "RULE_SET_IN_FORCE": "Nothing can be authorized until the program administrator loads the program's rules.",
    "PRESCRIBER_CERTIFIED": "Contact the program administrator to certify, renew or reinstate your certification.",
    "PATIENT_ENROLLED": "The enrollment must be active; the program administrator can tell you why it is not.",
    "PREGNANCY_TEST_NEGATIVE": ("A positive test is on file: stop therapy and follow the pregnancy reporting "
                                "procedure. No prescription can be authorized."),
    "RISK_CATEGORY_AGREEMENT": "Record the date the Patient-Prescriber Agreement was signed.",
    "RISK_CATEGORY_AGE": "Change the patient's risk category (adult or child) with a new agreement.",
    "PRODUCT_IN_PROGRAM": "Choose one of the program's products.",
    "DAYS_SUPPLY_LIMIT": "Prescribe at most the maximum days' supply.",
    "QUANTITY_LIMIT": "Lower the quantity to at most one capsule per day of supply.",
    "ONE_OPEN_PRESCRIPTION": "Cancel the open authorization, or wait until it is dispensed or lapses.",
    "NEXT_FILL_TIMING": "Request the next prescription once 7 days or less of the last supply remain.",
    "CONTRACEPTION_ATTESTED": "Record a contraception attestation for this prescription.",
    "CONTRACEPTION_METHODS": ("Record one highly effective method and one additional method used together, or the "
                              "patient's commitment to continuous abstinence."),
    "CONTRACEPTION_STARTED": "Contraception must have started at least 4 weeks before the first prescription.",
    "PREGNANCY_TEST_FIRST": "Record a negative pregnancy test collected 10 to 14 days before the first prescription.",
    "PREGNANCY_TEST_SECOND": "Record a second negative pregnancy test collected within the last 24 hours.",
    "PREGNANCY_TEST_INTERVAL": "Record the negative pregnancy test that is due.",
    "PREGNANCY_TEST_RECENT": "Record a negative pregnancy test collected within the last 7 days.",
    "MALE_COUNSELING_ATTESTED": "Record a male counseling attestation for this prescription.",
    "SURVEY_COMPLETED": "Have the patient complete the survey, then record it.",
}

PHARMACY = {
    "MATCH_ATTEMPTS_LIMIT": "Too many failed attempts: call the program administrator to have the lock cleared.",
    "AUTHORIZATION_FOUND": "Check the number on the prescription; if it is right, call the prescriber's office.",
    "PHARMACY_CERTIFIED": "Your pharmacy's certification is not active: contact the program administrator.",
    "PRESCRIBER_CERTIFIED": "Do not dispense. The prescriber's office must contact the program administrator.",
    "PATIENT_DOB_MATCH": "Check the patient's date of birth against an identity document and try again.",
    "PATIENT_ENROLLED": "Do not dispense. The prescriber has the details.",
    "PREGNANCY_TEST_NEGATIVE": "Do not dispense. The prescriber has the details.",
    "RISK_CATEGORY_AGREEMENT": "Do not dispense. The prescriber must update the patient's agreement.",
    "RISK_CATEGORY_AGE": "Do not dispense. The prescriber must update the patient's risk category.",
    "RISK_CATEGORY_UNCHANGED": "Do not dispense. The prescriber must request a new prescription authorization.",
    "AUTHORIZATION_NOT_EXPIRED": "The authorization has lapsed: the prescriber must request a new one.",
    "AUTHORIZATION_UNUSED": "This authorization is already held or used; reverse your own earlier RDA if it was yours.",
    "PRODUCT_MATCH": "Dispense the product on the authorization, or call the prescriber.",
    "QUANTITY_MATCH": "Dispense at most the authorized quantity.",
    "QUANTITY_LIMIT": "Lower the quantity to at most one capsule per day of supply.",
    "DAYS_SUPPLY_MATCH": "Dispense at most the authorized days' supply.",
}


def explained(checks, fixes):
    """The failed checks first, each with what to do; then the passed ones."""
    failed = [dict(c, fix=fixes.get(c["code"], "")) for c in checks if not c["passed"]]
    passed = [dict(c, fix="") for c in checks if c["passed"]]
    return failed, passed
