"""What is due for a page of patients (the prescriber's patient list): the same facts a prescription decision
loads (`facts`), for many patients at once in a fixed number of queries, and the pure outlook of each
(`rems.core.outlook`). Read-only."""

from datetime import timedelta

from rems.core import gates
from rems.core.outlook import patient_outlook
from rems.program.models import Attestation, AttestationKind, PatientSurvey, PregnancyTest, TestResult
from rems.program.selectors import rule_set_in_force

from .facts import attestation_fact, patient_fact
from .models import OPEN_PRESCRIPTION_STATUSES, DispenseAuthorization, DispenseStatus, Prescription, PrescriptionStatus


def _latest_per_patient(queryset, ids, field):
    return {
        row["patient_id"]: row
        for row in queryset.filter(patient_id__in=ids).order_by("patient_id", f"-{field}").distinct("patient_id")
        .values()
    }


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
    # Negative tests in the decision's own lookback window (a handful a patient): the first of the two tests
    # before therapy may not be the latest.
    tests = {}
    for row in PregnancyTest.objects.filter(
            patient_id__in=ids, result=TestResult.NEGATIVE, collected_at__lte=now,
            collected_at__gte=now - timedelta(days=params.pregnancy_test_lookback_days),
            sensitivity_miu_ml__lte=params.pregnancy_test_max_sensitivity_miu_ml,
    ).order_by("patient_id", "-collected_at").values("patient_id", "collected_at", "result", "sensitivity_miu_ml",
                                                     "setting"):
        tests.setdefault(row["patient_id"], []).append(row)
    attestations = {
        (row["patient_id"], row["kind"]): row
        for row in Attestation.objects.filter(patient_id__in=ids).order_by("patient_id", "kind", "-attested_at")
        .distinct("patient_id", "kind").values("patient_id", "kind", "attested_at", "methods", "abstinence",
                                                "started_on")
    }
    surveys = _latest_per_patient(PatientSurvey.objects.filter(completed_at__lte=now), ids, "completed_at")
    prescriptions = _latest_per_patient(Prescription.objects.exclude(status=PrescriptionStatus.CANCELLED), ids,
                                        "issued_at")
    dispenses = {
        row["prescription__patient_id"]: row
        for row in DispenseAuthorization.objects.filter(prescription__patient_id__in=ids,
                                                        status=DispenseStatus.DISPENSED)
        .order_by("prescription__patient_id", "-dispensed_at").distinct("prescription__patient_id")
        .values("prescription__patient_id", "dispensed_at", "days_supply")
    }

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
