"""Every action the compliance log records, in one enumeration.

An action is named `<subject>.<verb>`: the kind of record it concerns (the entry's `object_type`) and what
happened to it, for example `prescription.authorize` or `dispense_authorization.reverse`. Security events
(logins, refused keys and permissions, failed-match locks) are `security.<event>`.

Entries are never changed, so entries written under an earlier name keep it. `LEGACY_NAMES` says what each
earlier name means today; filters and reports go through `names_for`, so that they find old and new entries
alike.
"""

from enum import StrEnum


class Action(StrEnum):
    # Registry and certifications
    PRESCRIBER_CREATE = "prescriber.create"
    PHARMACY_CREATE = "pharmacy.create"
    CERTIFICATION_CREATE = "certification.create"
    CERTIFICATION_SUSPEND = "certification.suspend"
    CERTIFICATION_REINSTATE = "certification.reinstate"
    CERTIFICATION_REVOKE = "certification.revoke"
    CERTIFICATION_EXPIRE = "certification.expire"
    RULE_SET_LOAD = "rule_set.load"
    # Patients and their records
    PATIENT_ENROLL = "patient.enroll"
    PATIENT_CHANGE_RISK_CATEGORY = "patient.change_risk_category"
    PATIENT_SUSPEND = "patient.suspend"
    PATIENT_REINSTATE = "patient.reinstate"
    PATIENT_TRANSFER_REQUEST = "patient.transfer_request"
    PATIENT_TRANSFER_DECIDE = "patient.transfer_decide"
    PREGNANCY_TEST_RECORD = "pregnancy_test.record"
    PREGNANCY_REPORT_OPEN = "pregnancy_report.open"
    ATTESTATION_RECORD = "attestation.record"
    PATIENT_SURVEY_RECORD = "patient_survey.record"
    # Decisions and what follows them
    PRESCRIPTION_AUTHORIZE = "prescription.authorize"
    PRESCRIPTION_CANCEL = "prescription.cancel"
    PRESCRIPTION_EXPIRE = "prescription.expire"
    DISPENSE_AUTHORIZATION_REQUEST = "dispense_authorization.request"
    DISPENSE_AUTHORIZATION_DISPENSE = "dispense_authorization.dispense"
    DISPENSE_AUTHORIZATION_REVERSE = "dispense_authorization.reverse"
    DISPENSE_AUTHORIZATION_EXPIRE = "dispense_authorization.expire"
    # Users and keys
    USER_CREATE = "user.create"
    USER_DEACTIVATE = "user.deactivate"
    API_KEY_ISSUE = "api_key.issue"
    API_KEY_REVOKE = "api_key.revoke"
    # EHR integration
    CDS_CLIENT_REGISTER = "cds_client.register"
    CDS_CLIENT_RETIRE = "cds_client.retire"
    PATIENT_IDENTIFIER_LINK = "patient.identifier_link"
    EHR_ETASU_QUERY = "ehr.etasu_query"
    EHR_CDS_HOOK = "ehr.cds_hook"
    # Security events
    SECURITY_LOGIN = "security.login"
    SECURITY_LOGIN_FAILED = "security.login_failed"
    SECURITY_LOGIN_REFUSED = "security.login_refused"
    SECURITY_LOCKOUT = "security.lockout"
    SECURITY_AUTH_FAILED = "security.auth_failed"
    SECURITY_PERMISSION_REFUSED = "security.permission_refused"
    SECURITY_MATCH_LOCK = "security.match_lock"
    SECURITY_MATCH_LOCK_CLEAR = "security.match_lock_clear"


CERTIFICATION_CHANGES = {
    "suspend": Action.CERTIFICATION_SUSPEND,
    "reinstate": Action.CERTIFICATION_REINSTATE,
    "revoke": Action.CERTIFICATION_REVOKE,
}
ENROLLMENT_CHANGES = {"suspend": Action.PATIENT_SUSPEND, "reinstate": Action.PATIENT_REINSTATE}

# Earlier names, as written in entries before the actions were named consistently: the action each is now,
# and what of that action's entries it covered (a detail the new entries carry), if not all of them.
LEGACY_NAMES = {
    "dispense.confirm": (Action.DISPENSE_AUTHORIZATION_DISPENSE, None),
    "survey.record": (Action.PATIENT_SURVEY_RECORD, None),
    "attestation.contraception": (Action.ATTESTATION_RECORD, {"kind": "contraception"}),
    "attestation.male_counseling": (Action.ATTESTATION_RECORD, {"kind": "male_counseling"}),
}


_CURRENT = {action.value for action in Action}


def names_for(name):
    """What a filter for `name` must match: [(action names, detail that new entries must contain or None)].

    A current action matches its own name and every earlier name of it. An earlier name matches itself, and the
    entries of its current action that it would have been written for. A name that is neither (a typing error,
    or an action of a later version) matches itself only, so a filter never errors on it and finds nothing."""
    if name in _CURRENT:
        legacy = sorted(old for old, (action, _) in LEGACY_NAMES.items() if action == name)
        return [([name, *legacy], None)]
    if name in LEGACY_NAMES:
        action, detail = LEGACY_NAMES[name]
        return [([name], None), ([str(action)], detail)]
    return [([name], None)]


def all_names(*actions):
    """Every name the entries of `actions` may carry, earlier names included: for reports written in SQL."""
    return sorted({str(a) for a in actions} | {old for old, (a, _) in LEGACY_NAMES.items() if a in actions})
