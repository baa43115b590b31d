"""What is due for a page of patients (the prescriber's patient list): the same facts a prescription decision
loads (`facts`), for many patients at once in a fixed number of queries, and the pure outlook of each
(`rems.core.outlook`). Read-only."""

from datetime import timedelta

from rems.core import gates
from rems.core.outlook import patient_outlook
from rems.prepared import prepared_cursor
from rems.program.models import Attestation, AttestationKind, PatientSurvey, PregnancyTest, TestResult
from rems.program.selectors import rule_set_in_force

from .facts import attestation_fact, patient_fact
from .models import OPEN_PRESCRIPTION_STATUSES, DispenseAuthorization, DispenseStatus, Prescription, PrescriptionStatus


# The latest of each record for a page of patients, as prepared statements (one text whatever the page's size).
_TESTS_SQL = f"""SELECT patient_id, collected_at, result, sensitivity_miu_ml, setting FROM {PregnancyTest._meta.db_table}
 WHERE patient_id = ANY(%(ids)s::uuid[]) AND result = '{TestResult.NEGATIVE}' AND collected_at <= %(now)s::timestamptz
   AND collected_at >= %(since)s::timestamptz AND sensitivity_miu_ml <= %(max_sensitivity)s::integer
 ORDER BY patient_id, collected_at DESC"""
_ATTESTATIONS_SQL = f"""SELECT DISTINCT ON (patient_id, kind) patient_id, kind, attested_at, methods, abstinence, started_on
  FROM {Attestation._meta.db_table} WHERE patient_id = ANY(%(ids)s::uuid[])
 ORDER BY patient_id, kind, attested_at DESC"""
_SURVEYS_SQL = f"""SELECT DISTINCT ON (patient_id) patient_id, completed_at FROM {PatientSurvey._meta.db_table}
 WHERE patient_id = ANY(%(ids)s::uuid[]) AND completed_at <= %(now)s::timestamptz
 ORDER BY patient_id, completed_at DESC"""
_PRESCRIPTIONS_SQL = f"""SELECT DISTINCT ON (patient_id) patient_id, status, issued_at, authorization_number, expires_at
  FROM {Prescription._meta.db_table}
 WHERE patient_id = ANY(%(ids)s::uuid[]) AND status <> '{PrescriptionStatus.CANCELLED}'
 ORDER BY patient_id, issued_at DESC"""
_DISPENSES_SQL = f"""SELECT DISTINCT ON (p.patient_id) p.patient_id, d.dispensed_at, d.days_supply
  FROM {DispenseAuthorization._meta.db_table} d JOIN {Prescription._meta.db_table} p ON p.id = d.prescription_id
 WHERE p.patient_id = ANY(%(ids)s::uuid[]) AND d.status = '{DispenseStatus.DISPENSED}'
 ORDER BY p.patient_id, d.dispensed_at DESC"""


def _rows(sql, values):
    with prepared_cursor() as cursor:
        cursor.execute(sql, values)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def patient_outlooks(*, patients, now):
    """patient id -> the outlook items, for a page of patients: seven queries a program whatever the page's size.
    Only the latest of each record is needed to look ahead; the decision itself loads its own facts."""
    by_program = {}
    for patient in patients:
        by_program.setdefault(patient.program_id, []).append(patient)
    result = {}
    for group in by_program.values():
        rule_set = rule_set_in_force(program=group[0].program, now=now)
        result.update(_outlooks(group, rule_set, now))
    return result


def _outlooks(patients, rule_set, now):
    params = rule_set.parameters if rule_set else None
    histories = patient_histories(patients, params, now)
    return {p.pk: patient_outlook(patient=patient_fact(p), history=histories[p.pk], params=params, now=now)
            for p in patients}


def patient_histories(patients, params, now):
    """patient id -> the history a prescription decision would load for the patient at `now` (the facts of
    `facts.patient_history`), for many patients of one program at once, in a fixed number of queries. Only the
    negative tests that count are loaded: what is due is judged from them; the decision checks for positives."""
    ids = [p.pk for p in patients]
    if not ids or params is None:
        return {p.pk: gates.PatientHistory() for p in patients}
    values = {"ids": ids, "now": now, "since": now - timedelta(days=params.pregnancy_test_lookback_days),
              "max_sensitivity": params.pregnancy_test_max_sensitivity_miu_ml}
    # Negative tests in the decision's own lookback window (a handful a patient): the first of the two tests
    # before therapy may not be the latest.
    tests = {}
    for row in _rows(_TESTS_SQL, values):
        tests.setdefault(row["patient_id"], []).append(row)
    attestations = {(row["patient_id"], row["kind"]): row for row in _rows(_ATTESTATIONS_SQL, values)}
    surveys = {row["patient_id"]: row for row in _rows(_SURVEYS_SQL, values)}
    prescriptions = {row["patient_id"]: row for row in _rows(_PRESCRIPTIONS_SQL, values)}
    dispenses = {row["patient_id"]: row for row in _rows(_DISPENSES_SQL, values)}

    result = {}
    for patient in patients:
        rx, dispense = prescriptions.get(patient.pk), dispenses.get(patient.pk)
        survey = surveys.get(patient.pk)
        is_open = rx is not None and rx["status"] in OPEN_PRESCRIPTION_STATUSES

        def latest(kind, pk=patient.pk):
            return attestation_fact(attestations.get((pk, kind)), kind)

        result[patient.pk] = gates.PatientHistory(
            tests=tuple(gates.PregnancyTestFact(collected_at=t["collected_at"], result=t["result"],
                                                sensitivity_miu_ml=t["sensitivity_miu_ml"], setting=t["setting"])
                        for t in tests.get(patient.pk, ())),
            contraception=latest(AttestationKind.CONTRACEPTION),
            male_counseling=latest(AttestationKind.MALE_COUNSELING),
            counseling=latest(AttestationKind.COUNSELING),
            latest_survey=gates.SurveyFact(completed_at=survey["completed_at"]) if survey else None,
            previous_prescription_issued_at=rx["issued_at"] if rx else None,
            open_prescription=gates.OpenPrescriptionFact(authorization_number=rx["authorization_number"],
                                                         expires_at=rx["expires_at"]) if is_open else None,
            last_dispense=gates.DispenseFact(dispensed_at=dispense["dispensed_at"],
                                             days_supply=dispense["days_supply"]) if dispense else None,
        )
    return result
