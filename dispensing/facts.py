"""Loading what a decision needs, as the gate engine's facts. Read-only: nothing here writes or locks.

A decision reads a bounded number of rows whatever the patient's history: pregnancy tests from the rule set's
lookback window only, and the latest of everything else.
"""

from datetime import timedelta

from rems.core import gates
from rems.program.models import Attestation, AttestationKind, PatientSurvey, PregnancyTest
from rems.program.selectors import certification_fact, certification_facts, rule_set_for_decision

from .models import OPEN_PRESCRIPTION_STATUSES, DispenseAuthorization, DispenseStatus, Prescription, PrescriptionStatus

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


def recent_tests(patient_id, rule_set, now):
    """The patient's pregnancy tests collected in the rule set's lookback window before `now`, newest first."""
    if rule_set.parameters is None:
        return ()
    since = now - timedelta(days=rule_set.parameters.pregnancy_test_lookback_days)
    rows = (
        PregnancyTest.objects.filter(patient_id=patient_id, collected_at__gte=since, collected_at__lte=now)
        .order_by("-collected_at")
        .values_list("collected_at", "result", "sensitivity_miu_ml", "setting")[:RECENT_TESTS_LIMIT]
    )
    return tuple(gates.PregnancyTestFact(collected_at=c, result=r, sensitivity_miu_ml=s, setting=where)
                 for c, r, s, where in rows)


def attestation_fact(row, kind):
    """An attestation row (`attested_at`, `methods`, `abstinence`, `started_on`) as the engine sees it."""
    if row is None:
        return None
    return gates.AttestationFact(
        kind=kind, attested_at=row["attested_at"], methods=tuple(row["methods"]), abstinence=row["abstinence"],
        started_on=row["started_on"],
    )


def _latest_attestation(patient_id, kind):
    row = (
        Attestation.objects.filter(patient_id=patient_id, kind=kind)
        .order_by("-attested_at")
        .values("attested_at", "methods", "abstinence", "started_on")
        .first()
    )
    return attestation_fact(row, kind)


def needed_records(risk_category, params):
    """Which records of its kind a decision for a patient of `risk_category` reads: (pregnancy tests and
    contraception?, the kind of counseling attestation, or None)."""
    if params is None or params.category(risk_category) is None:
        return False, None  # the engine decides on the rule set or the category alone
    counseling = params.counseling.get(risk_category)
    return params.category(risk_category).can_get_pregnant, counseling.kind if counseling else None


def patient_history(patient, rule_set, now):
    """What a prescription decision needs of the patient's record in the patient's program."""
    reproductive, counseling = needed_records(patient.risk_category, rule_set.parameters)
    # The latest prescription not cancelled, and the open one: only one can be open, and it is then the latest
    # issued, so one query of the two latest rows holds both.
    latest = list(
        Prescription.objects.filter(patient=patient, program_id=patient.program_id)
        .exclude(status=PrescriptionStatus.CANCELLED)
        .order_by("-issued_at")
        .values("issued_at", "status", "authorization_number", "expires_at")[:2]
    )
    previous = latest[0] if latest else None
    open_rx = next(
        ({"authorization_number": r["authorization_number"], "expires_at": r["expires_at"]} for r in latest
         if r["status"] in OPEN_PRESCRIPTION_STATUSES),
        None,
    )
    # The supply actually dispensed, which may be less than the prescription allowed.
    last_dispense = (
        DispenseAuthorization.objects.filter(
            prescription__patient=patient, prescription__program_id=patient.program_id,
            status=DispenseStatus.DISPENSED,
        )
        .order_by("-dispensed_at")
        .values("dispensed_at", "days_supply")
        .first()
    )
    survey = (
        PatientSurvey.objects.filter(patient=patient, completed_at__lte=now)
        .order_by("-completed_at")
        .values("completed_at")
        .first()
    )
    return gates.PatientHistory(
        tests=recent_tests(patient.pk, rule_set, now) if reproductive else (),
        contraception=_latest_attestation(patient.pk, AttestationKind.CONTRACEPTION) if reproductive else None,
        male_counseling=(_latest_attestation(patient.pk, AttestationKind.MALE_COUNSELING)
                         if counseling == AttestationKind.MALE_COUNSELING else None),
        counseling=(_latest_attestation(patient.pk, AttestationKind.COUNSELING)
                    if counseling == AttestationKind.COUNSELING else None),
        latest_survey=gates.SurveyFact(completed_at=survey["completed_at"]) if survey else None,
        previous_prescription_issued_at=previous["issued_at"] if previous else None,
        open_prescription=gates.OpenPrescriptionFact(**open_rx) if open_rx else None,
        last_dispense=gates.DispenseFact(**last_dispense) if last_dispense else None,
    )


def prescription_facts(*, patient, product, rule_set, ndc, quantity, days_supply, now):
    """The facts of a prescription decision for `patient` (loaded with its program) at `now`."""
    return gates.PrescriptionFacts(
        rule_set=rule_set,
        prescriber_certification=certification_fact(program_id=patient.program_id,
                                                     prescriber_id=patient.prescriber_id),
        patient=patient_fact(patient),
        history=patient_history(patient, rule_set, now),
        request=gates.PrescriptionRequestFact(
            ndc=ndc, product_in_program=product is not None, quantity=quantity, days_supply=days_supply
        ),
    )


def requirements_facts(*, patient, rule_set, now):
    """The facts of a status query on `patient`'s requirements at `now`: a prescription decision's, without a
    request."""
    return gates.PrescriptionFacts(
        rule_set=rule_set,
        prescriber_certification=certification_fact(program_id=patient.program_id,
                                                     prescriber_id=patient.prescriber_id),
        patient=patient_fact(patient),
        history=patient_history(patient, rule_set, now),
        request=None,
    )


def authorization_by_number(authorization_number):
    """The prescription authorization with this number, with its patient, product and program; None if none."""
    return (
        Prescription.objects.select_related("patient", "product", "program")
        .filter(authorization_number=authorization_number)
        .first()
    )


def authorization_fact(prescription):
    """A prescription authorization as the pharmacy's decision sees it."""
    return gates.AuthorizationFact(
        status=prescription.status, expires_at=prescription.expires_at, ndc=prescription.product.ndc,
        quantity=prescription.quantity, days_supply=prescription.days_supply,
        risk_category=prescription.risk_category,
    )


def dispense_facts(*, prescription, pharmacy, request, now):
    """The facts of a dispense decision at the counter of `pharmacy` against `prescription` (None when no
    authorization has the number asked for) at `now`."""
    if prescription is None:
        return gates.DispenseFacts(
            rule_set=None, pharmacy_certification=None, authorization=None, prescriber_certification=None,
            patient=None, recent_tests=(), request=request,
        )
    program, patient = prescription.program, prescription.patient
    rule_set = rule_set_for_decision(program=program, now=now)
    reproductive, _ = needed_records(patient.risk_category, rule_set.parameters)
    prescriber_certification, pharmacy_certification = certification_facts(
        program_id=program.pk, prescriber_id=prescription.prescriber_id, pharmacy_id=pharmacy.pk
    )
    return gates.DispenseFacts(
        rule_set=rule_set,
        pharmacy_certification=pharmacy_certification,
        authorization=authorization_fact(prescription),
        prescriber_certification=prescriber_certification,
        patient=patient_fact(patient),
        recent_tests=recent_tests(patient.pk, rule_set, now) if reproductive else (),
        request=request,
    )


def locked_out_facts(*, request, lock_message):
    """The facts of a dispense request refused unseen: the pharmacy's attempts are locked after failed matches."""
    return gates.DispenseFacts(
        rule_set=None, pharmacy_certification=None, authorization=None, prescriber_certification=None,
        patient=None, recent_tests=(), request=request, match_lock=lock_message,
    )
