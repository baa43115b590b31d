"""What the prescriber's office records about a patient: pregnancy tests (a positive one suspends the enrollment
and opens a pregnancy report at once), contraception and counseling attestations, and patient surveys."""

from django.db import transaction

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused

from .certifications import party_bar_check
from .models import (
    Attestation,
    AttestationKind,
    Patient,
    PatientSurvey,
    PregnancyReport,
    PregnancyTest,
    Status,
    TestResult,
    TestSetting,
)
from .notifications import positive_test_alert
from .selectors import rule_set_in_force
from .validation import (
    CLOCK_SKEW,
    InvalidValue,
    contraception_attestation_check,
    counseling_attestation_check,
    not_in_future_check,
    plausible_date_check,
    sensitivity_check,
)


class CannotRecord(ActionRefused):
    pass


def _category(patient, now):
    """The patient's category under the rule set in force (None if none is in force or it has no such
    category), with the rule set's parameters."""
    params = rule_set_in_force(program=patient.program, now=now).parameters
    return (params.category(patient.risk_category) if params else None), params


@transaction.atomic
def pregnancy_test_record(*, actor, patient, collected_at, result, sensitivity_miu_ml, now,
                          setting=TestSetting.LABORATORY):
    party_bar_check(actor=actor, program=patient.program)
    not_in_future_check(collected_at, now, "The collection time", field="collected_at")
    sensitivity_check(sensitivity_miu_ml)
    if result not in TestResult.values:
        raise InvalidValue(f"A test's result is one of: {', '.join(TestResult.values)}.", field="result")
    if setting not in TestSetting.values:
        raise InvalidValue(f"A test's setting is one of: {', '.join(TestSetting.values)}.", field="setting")
    category, _ = _category(patient, now)
    if category is not None and category.male:
        # Recorded for anyone else: a test of a patient whose category says she cannot get pregnant is a fact
        # worth keeping (a positive one suspends the enrollment all the same).
        raise CannotRecord("Pregnancy tests are not recorded for a male patient.", code="not_applicable")
    if collected_at.date() < patient.date_of_birth:
        raise InvalidValue("The collection time is before the patient's birth.", field="collected_at")
    # Serialises with dispense confirmations, which lock the same patient row first.
    patient = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    test = PregnancyTest.objects.create(
        patient=patient, collected_at=collected_at, result=result, sensitivity_miu_ml=sensitivity_miu_ml,
        setting=setting, recorded_at=now, recorded_by=actor,
    )
    log_entry_write(
        actor=actor, action=Action.PREGNANCY_TEST_RECORD, outcome=result, object_type="pregnancy_test",
        object_id=test.pk, program=patient.program.slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id,
        now=now, detail={"collected_at": collected_at.isoformat(), "sensitivity_miu_ml": sensitivity_miu_ml,
                         "setting": setting},
    )
    if result == TestResult.POSITIVE:
        _positive_test_suspend(actor=actor, patient=patient, test=test, now=now)
    return test


def _positive_test_suspend(*, actor, patient, test, now):
    """A positive pregnancy test suspends the enrollment at once and opens a pregnancy report."""
    reason = f"positive pregnancy test collected {test.collected_at.date().isoformat()}"
    changed = Patient.objects.filter(pk=patient.pk, status__in=[Status.ACTIVE, Status.PENDING]).update(
        status=Status.SUSPENDED, status_reason=reason, status_changed_at=now
    )
    if changed:
        log_entry_write(
            actor=actor, action=Action.PATIENT_SUSPEND, outcome=Status.SUSPENDED, object_type="patient",
            object_id=patient.pk, program=patient.program.slug, patient_id=patient.pk,
            prescriber_id=patient.prescriber_id, now=now, detail={"reason": reason, "pregnancy_test": str(test.pk)},
        )
    report = PregnancyReport.objects.create(patient=patient, pregnancy_test=test, opened_at=now)
    positive_test_alert(patient=patient, test=test, report=report, now=now)
    log_entry_write(
        actor=actor, action=Action.PREGNANCY_REPORT_OPEN, outcome="opened", object_type="pregnancy_report",
        object_id=report.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=patient.prescriber_id, now=now, detail={"pregnancy_test": str(test.pk)},
    )
    return report


@transaction.atomic
def attestation_record(*, actor, patient, kind, now, methods=(), abstinence=False, started_on=None):
    """Contraception (a patient who can get pregnant) or counseling (of the kind the patient's category needs:
    condom counseling for males of the thalidomide class, counseling in iPLEDGE), attested by the prescriber."""
    party_bar_check(actor=actor, program=patient.program)
    category, params = _category(patient, now)
    if category is None:
        raise CannotRecord("No rule set in force has the patient's risk category; nothing can be attested under it.",
                           code="not_applicable")
    if kind == AttestationKind.CONTRACEPTION:
        if not category.can_get_pregnant:
            raise CannotRecord(
                "Contraception is attested for patients who can get pregnant only.", code="not_applicable"
            )
        contraception_attestation_check(methods=methods, abstinence=abstinence, started_on=started_on,
                                        known=params.contraception_methods,
                                        abstinence_allowed=params.contraception_abstinence_allowed)
        if started_on > (now + CLOCK_SKEW).date():
            raise InvalidValue("The date contraception started cannot be in the future.", field="started_on")
        plausible_date_check(started_on, "The date contraception started", field="started_on")
    elif kind in (AttestationKind.MALE_COUNSELING, AttestationKind.COUNSELING):
        needed = params.counseling.get(patient.risk_category)
        if needed is None or needed.kind != kind:
            what = {"male_counseling": "Condom counseling", "counseling": "Counseling"}[kind]
            raise CannotRecord(f"{what} is not attested for a patient of {patient.risk_category} in this program.",
                               code="not_applicable")
        counseling_attestation_check(methods=methods, abstinence=abstinence, started_on=started_on, kind=kind)
    else:
        raise InvalidValue(f"Unknown attestation kind {kind!r}.", field="kind")
    attestation = Attestation.objects.create(
        patient=patient, kind=kind, methods=list(methods), abstinence=abstinence, started_on=started_on,
        attested_at=now, attested_by=actor,
    )
    log_entry_write(
        actor=actor, action=Action.ATTESTATION_RECORD, outcome="recorded", object_type="attestation",
        object_id=attestation.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=patient.prescriber_id, now=now,
        detail={"kind": kind, "methods": list(methods), "abstinence": abstinence,
                "started_on": started_on.isoformat() if started_on else None},
    )
    return attestation


@transaction.atomic
def survey_record(*, actor, patient, completed_at, now):
    party_bar_check(actor=actor, program=patient.program)
    not_in_future_check(completed_at, now, "The completion time", field="completed_at")
    survey = PatientSurvey.objects.create(patient=patient, completed_at=completed_at, recorded_at=now, recorded_by=actor)
    log_entry_write(
        actor=actor, action=Action.PATIENT_SURVEY_RECORD, outcome="recorded", object_type="patient_survey",
        object_id=survey.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=patient.prescriber_id, now=now, detail={"completed_at": completed_at.isoformat()},
    )
    return survey
