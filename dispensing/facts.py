"""Loading what a decision needs, as the gate engine's facts. Read-only: nothing here writes or locks.

A decision reads a bounded number of rows whatever the patient's history: its most recent pregnancy tests, and
the latest of everything else. Each decision's facts are one prepared statement (`prepared.py`), run after the
decision has taken its locks, so that it sees everything committed before them: the rule set in force (which one
is read every time; its parsing is held in process, `selectors.rule_set_fact_held`), the certifications, the
patient's record.
"""

from datetime import timedelta

from rems.core import gates
from rems.prepared import fetch_one
from rems.program.models import AttestationKind
from rems.program.selectors import rule_set_fact_held, rule_set_in_force_sql, rule_set_keys_held

from .models import OPEN_PRESCRIPTION_STATUSES, DispenseStatus, PrescriptionStatus

# How many recent pregnancy tests a decision reads at most: the lookback window is at most a few weeks, so a
# history of any length costs the same.
RECENT_TESTS_LIMIT = 100


def patient_fact(patient):
    """A patient's enrollment as the engine sees it (no name)."""
    return gates.PatientFact(
        status=patient.status,
        status_reason=patient.status_reason,
        risk_category=patient.risk_category,
        date_of_birth=patient.date_of_birth,
        agreement_signed_on=patient.agreement_signed_on,
        irregular_cycles=patient.irregular_cycles,
        therapy_started_at=patient.therapy_started_at,
        time_zone=patient.time_zone,
    )


def attestation_fact(row, kind):
    """An attestation row (`attested_at`, `methods`, `abstinence`, `started_on`) as the engine sees it."""
    if row is None:
        return None
    return gates.AttestationFact(
        kind=kind, attested_at=row["attested_at"], methods=tuple(row["methods"]), abstinence=row["abstinence"],
        started_on=row["started_on"],
    )


def needed_records(risk_category, params):
    """Which records of its kind a decision for a patient of `risk_category` reads: (pregnancy tests and
    contraception?, the kind of counseling attestation, or None)."""
    if params is None or params.category(risk_category) is None:
        return False, None  # the engine decides on the rule set or the category alone
    counseling = params.counseling.get(risk_category)
    return params.category(risk_category).can_get_pregnant, counseling.kind if counseling else None


def _in_window(tests, rule_set, now):
    """The tests (newest first, collected at or before `now`) collected in the rule set's lookback window."""
    since = now - timedelta(days=rule_set.parameters.pregnancy_test_lookback_days)
    return tuple(test for test in tests if test.collected_at >= since)


def _tests(collected, results, sensitivities, settings):
    return tuple(gates.PregnancyTestFact(collected_at=c, result=r, sensitivity_miu_ml=s, setting=where)
                 for c, r, s, where in zip(collected or (), results or (), sensitivities or (), settings or ()))


def _certification(status, expires_at):
    return gates.CertificationFact(status=status, expires_at=expires_at) if status is not None else None


def _attestation(kind, attested_at, methods, abstinence, started_on):
    if attested_at is None:
        return None
    return gates.AttestationFact(kind=kind, attested_at=attested_at, methods=tuple(methods or ()),
                                 abstinence=abstinence, started_on=started_on)


def _rule_set(slug, key, version, parameters):
    return rule_set_fact_held(key=key, slug=slug, version=version, parameters=parameters)


# The rule set of program `g` in force at %(now)s: its key, its version, and its parameters unless this process
# holds them (%(held)s).
_RULE_SET_JOIN = f"""
LEFT JOIN LATERAL ({rule_set_in_force_sql("g.id")}) rs ON true"""

# The most recent pregnancy tests of patient `pt` collected at or before %(now)s, newest first, as arrays.
_TESTS_JOIN = f"""
LEFT JOIN LATERAL (
  SELECT array_agg(t.collected_at ORDER BY t.collected_at DESC) AS collected,
         array_agg(t.result ORDER BY t.collected_at DESC) AS results,
         array_agg(t.sensitivity_miu_ml ORDER BY t.collected_at DESC) AS sensitivities,
         array_agg(t.setting ORDER BY t.collected_at DESC) AS settings
    FROM (SELECT collected_at, result, sensitivity_miu_ml, setting FROM rems_pregnancytest
           WHERE patient_id = pt.id AND collected_at <= %(now)s
           ORDER BY collected_at DESC LIMIT {RECENT_TESTS_LIMIT}) t) tests ON true"""


def _certification_join(alias, party_column, party_param):
    """The latest certification of a party in program `g` (pending, active, suspended, or else the latest)."""
    return f"""
LEFT JOIN LATERAL (
  SELECT c.status, c.expires_at FROM rems_certification c
   WHERE c.program_id = g.id AND c.{party_column} = {party_param}
   ORDER BY c.certified_at DESC LIMIT 1) {alias} ON true"""


def _attestation_join(alias, kind):
    return f"""
LEFT JOIN LATERAL (
  SELECT a.attested_at, a.methods, a.abstinence, a.started_on FROM rems_attestation a
   WHERE a.patient_id = pt.id AND a.kind = '{kind}' ORDER BY a.attested_at DESC LIMIT 1) {alias} ON true"""


# A prescription decision's facts: the rule set in force, the product asked for, the prescriber's certification,
# and the patient's record: the two latest prescriptions not cancelled (only one can be open, and it is then the
# latest), the supply last dispensed, the latest survey, the recent tests and the latest attestation of each kind.
_PATIENT_FACTS_SQL = f"""SELECT g.slug, rs.key, rs.version, rs.parameters, pr.id,
       pc.status, pc.expires_at,
       rx.issued, rx.statuses, rx.numbers, rx.expiries,
       ld.dispensed_at, ld.days_supply, sv.completed_at,
       tests.collected, tests.results, tests.sensitivities, tests.settings,
       ac.attested_at, ac.methods, ac.abstinence, ac.started_on,
       am.attested_at, am.methods, am.abstinence, am.started_on,
       ak.attested_at, ak.methods, ak.abstinence, ak.started_on
  FROM rems_patient pt
  JOIN rems_program g ON g.id = pt.program_id
  {_RULE_SET_JOIN}
  LEFT JOIN rems_product pr ON pr.ndc = %(ndc)s::text AND pr.program_id = g.id
  {_certification_join("pc", "prescriber_id", "pt.prescriber_id")}
  LEFT JOIN LATERAL (
    SELECT array_agg(x.issued_at ORDER BY x.issued_at DESC) AS issued, array_agg(x.status::text ORDER BY x.issued_at DESC) AS statuses,
           array_agg(x.authorization_number::text ORDER BY x.issued_at DESC) AS numbers,
           array_agg(x.expires_at ORDER BY x.issued_at DESC) AS expiries
      FROM (SELECT issued_at, status, authorization_number, expires_at FROM dispensing_prescription
             WHERE patient_id = pt.id AND program_id = pt.program_id AND status <> '{PrescriptionStatus.CANCELLED}'
             ORDER BY issued_at DESC LIMIT 2) x) rx ON true
  LEFT JOIN LATERAL (
    SELECT d.dispensed_at, d.days_supply FROM dispensing_dispenseauthorization d
      JOIN dispensing_prescription p ON p.id = d.prescription_id
     WHERE p.patient_id = pt.id AND p.program_id = pt.program_id AND d.status = '{DispenseStatus.DISPENSED}'
     ORDER BY d.dispensed_at DESC LIMIT 1) ld ON true
  LEFT JOIN LATERAL (
    SELECT s.completed_at FROM rems_patientsurvey s WHERE s.patient_id = pt.id AND s.completed_at <= %(now)s
     ORDER BY s.completed_at DESC LIMIT 1) sv ON true
  {_TESTS_JOIN}
  {_attestation_join("ac", AttestationKind.CONTRACEPTION)}
  {_attestation_join("am", AttestationKind.MALE_COUNSELING)}
  {_attestation_join("ak", AttestationKind.COUNSELING)}
 WHERE pt.id = %(patient)s::uuid
"""


def _patient_facts_row(patient, ndc, now):
    return fetch_one(_PATIENT_FACTS_SQL, {"patient": patient.pk, "ndc": ndc or "", "now": now,
                                          "held": rule_set_keys_held()})


def _history(row, patient, rule_set, now):
    """What a prescription decision needs of the patient's record, from the statement's row."""
    (_, _, _, _, _, _, _, issued, statuses, numbers, expiries, dispensed_at, dispensed_days, survey_at,
     collected, results, sensitivities, settings, *attestations) = row
    reproductive, counseling = needed_records(patient.risk_category, rule_set.parameters)
    contraception, male_counseling, other_counseling = (
        _attestation(kind, *attestations[i * 4:i * 4 + 4])
        for i, kind in enumerate((AttestationKind.CONTRACEPTION, AttestationKind.MALE_COUNSELING,
                                  AttestationKind.COUNSELING)))
    latest = list(zip(issued or (), statuses or (), numbers or (), expiries or ()))
    open_rx = next((gates.OpenPrescriptionFact(authorization_number=number, expires_at=expires_at)
                    for _, status, number, expires_at in latest if status in OPEN_PRESCRIPTION_STATUSES), None)
    return gates.PatientHistory(
        tests=_in_window(_tests(collected, results, sensitivities, settings), rule_set, now) if reproductive else (),
        contraception=contraception if reproductive else None,
        male_counseling=male_counseling if counseling == AttestationKind.MALE_COUNSELING else None,
        counseling=other_counseling if counseling == AttestationKind.COUNSELING else None,
        latest_survey=gates.SurveyFact(completed_at=survey_at) if survey_at else None,
        previous_prescription_issued_at=latest[0][0] if latest else None,
        open_prescription=open_rx,
        # The supply actually dispensed, which may be less than the prescription allowed.
        last_dispense=gates.DispenseFact(dispensed_at=dispensed_at, days_supply=dispensed_days) if dispensed_at else None,
    )


def prescription_facts(*, patient, ndc, quantity, days_supply, now):
    """The facts of a prescription decision for `patient` at `now`, in one statement, with the id of the product
    asked for (None when it is not one of the program's) and the program's slug. Call it after the patient's row and the program's rule
    sets are locked: the rule set is the one in force at `now`."""
    row = _patient_facts_row(patient, ndc, now)
    slug, key, version, parameters, product_id, certification_status, certification_expires_at = row[:7]
    rule_set = _rule_set(slug, key, version, parameters)
    return gates.PrescriptionFacts(
        rule_set=rule_set,
        prescriber_certification=_certification(certification_status, certification_expires_at),
        patient=patient_fact(patient),
        history=_history(row, patient, rule_set, now),
        request=gates.PrescriptionRequestFact(
            ndc=ndc, product_in_program=product_id is not None, quantity=quantity, days_supply=days_supply
        ),
    ), product_id, slug


def requirements_facts(*, patient, rule_set, now):
    """The facts of a status query on `patient`'s requirements at `now` under `rule_set`: a prescription
    decision's, without a request."""
    row = _patient_facts_row(patient, "", now)
    return gates.PrescriptionFacts(
        rule_set=rule_set,
        prescriber_certification=_certification(row[5], row[6]),
        patient=patient_fact(patient),
        history=_history(row, patient, rule_set, now),
        request=None,
    )


# A dispense decision's facts: the authorization with the number asked for, its patient, product and program, the
# rule set in force, the prescriber's and the pharmacy's certifications in the program, the patient's recent tests,
# and whether an RDA of the authorization lapsed undispensed.
_DISPENSE_FACTS_SQL = f"""SELECT rx.id, rx.status, rx.expires_at, rx.quantity, rx.days_supply, rx.risk_category, rx.prescriber_id,
       rx.patient_id, rx.product_id, pd.ndc, g.slug, rs.key, rs.version, rs.parameters,
       pt.status, pt.status_reason, pt.risk_category, pt.date_of_birth, pt.agreement_signed_on, pt.irregular_cycles,
       pt.therapy_started_at, pt.time_zone,
       pc.status, pc.expires_at, fc.status, fc.expires_at,
       tests.collected, tests.results, tests.sensitivities, tests.settings,
       EXISTS (SELECT 1 FROM dispensing_dispenseauthorization d
                WHERE d.prescription_id = rx.id AND d.status = '{DispenseStatus.APPROVED}' AND d.expires_at <= %(now)s)
  FROM dispensing_prescription rx
  JOIN rems_patient pt ON pt.id = rx.patient_id
  JOIN rems_product pd ON pd.id = rx.product_id
  JOIN rems_program g ON g.id = rx.program_id
  {_RULE_SET_JOIN}
  {_certification_join("pc", "prescriber_id", "rx.prescriber_id")}
  {_certification_join("fc", "pharmacy_id", "%(pharmacy)s::uuid")}
  {_TESTS_JOIN}
 WHERE rx.authorization_number = %(number)s::text
"""


class AuthorizationFound:
    """The prescription authorization a dispense decision is about, as the decision writes it: ids, program and
    state, with `lapsed_rda`: an RDA of it lapsed undispensed."""

    __slots__ = ("id", "status", "patient_id", "prescriber_id", "product_id", "program_slug", "lapsed_rda")

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)


def dispense_facts(*, authorization_number, pharmacy, request, now):
    """The facts of a dispense decision at the counter of `pharmacy` for `authorization_number` at `now`, in one
    statement, and the authorization (None when no authorization has the number). Call it after the program's rule
    sets are locked: the rule set is the one in force at `now`."""
    row = fetch_one(_DISPENSE_FACTS_SQL, {"number": authorization_number, "pharmacy": pharmacy.pk, "now": now,
                                          "held": rule_set_keys_held()})
    if row is None:
        return gates.DispenseFacts(
            rule_set=None, pharmacy_certification=None, authorization=None, prescriber_certification=None,
            patient=None, recent_tests=(), request=request,
        ), None
    (prescription_id, status, expires_at, quantity, days_supply, risk_category, prescriber_id, patient_id,
     product_id, ndc, slug, key, version, parameters, *patient_row) = row[:22]
    (prescriber_status, prescriber_expires_at, pharmacy_status, pharmacy_expires_at,
     collected, results, sensitivities, settings, lapsed_rda) = row[22:]
    rule_set = _rule_set(slug, key, version, parameters)
    patient = gates.PatientFact(*patient_row)
    reproductive, _ = needed_records(patient.risk_category, rule_set.parameters)
    found = AuthorizationFound(id=prescription_id, status=status, patient_id=patient_id, prescriber_id=prescriber_id,
                               product_id=product_id, program_slug=slug, lapsed_rda=lapsed_rda)
    return gates.DispenseFacts(
        rule_set=rule_set,
        pharmacy_certification=_certification(pharmacy_status, pharmacy_expires_at),
        authorization=gates.AuthorizationFact(status=status, expires_at=expires_at, ndc=ndc, quantity=quantity,
                                              days_supply=days_supply, risk_category=risk_category),
        prescriber_certification=_certification(prescriber_status, prescriber_expires_at),
        patient=patient,
        recent_tests=(_in_window(_tests(collected, results, sensitivities, settings), rule_set, now)
                      if reproductive else ()),
        request=request,
    ), found


def locked_out_facts(*, request, lock_message):
    """The facts of a dispense request refused unseen: the pharmacy's attempts are locked after failed matches."""
    return gates.DispenseFacts(
        rule_set=None, pharmacy_certification=None, authorization=None, prescriber_certification=None,
        patient=None, recent_tests=(), request=request, match_lock=lock_message,
    )
