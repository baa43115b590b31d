"""Every change of state of the program's parties goes through one function here, inside one transaction,
and writes its compliance-log entry in that transaction. Views, the admin and tasks call these; they never
save models themselves.
"""

from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from .audit import log_entry_write
from .errors import ActionRefused
from .identifiers import ncpdp_parse, ndc_parse, npi_parse
from .notifications import positive_test_alert
from .models import (
    Attestation,
    AttestationKind,
    Certification,
    Patient,
    PatientSurvey,
    Pharmacy,
    PregnancyReport,
    PregnancyTest,
    Prescriber,
    Product,
    Program,
    RiskCategory,
    RuleSet,
    Status,
    TestResult,
)
from .rules import InvalidRuleSet, RuleParameters
from .selectors import certification_is_active, rule_set_in_force

# A recorded time may run ahead of the server's clock by this much (clock skew), never more.
CLOCK_SKEW = timedelta(minutes=5)
# Nothing the program records happened before this day: an earlier date is a typing error.
EARLIEST_DATE = date(1900, 1, 1)


def _check_plausible(day, what, error):
    if day < EARLIEST_DATE:
        raise error(f"{what} cannot be before {EARLIEST_DATE}.", code="invalid")

MALE_CATEGORIES = {RiskCategory.MALE_ADULT, RiskCategory.MALE_CHILD}
REPRODUCTIVE_CATEGORIES = {RiskCategory.FRP_ADULT, RiskCategory.FRP_CHILD}


def _months(n):
    return timedelta(days=round(n * 365.25 / 12))


# --- Registry -------------------------------------------------------------------------------------------
class CannotRegister(ActionRefused):
    pass


@transaction.atomic
def prescriber_create(*, actor, npi, first_name, last_name, email, now):
    npi = npi_parse(npi)
    if Prescriber.objects.filter(npi=npi).exists() or Pharmacy.objects.filter(npi=npi).exists():
        raise CannotRegister(f"NPI {npi} is already registered.", code="duplicate")
    try:
        with transaction.atomic():
            prescriber = Prescriber.objects.create(npi=npi, first_name=first_name, last_name=last_name, email=email)
    except IntegrityError:
        raise CannotRegister(f"NPI {npi} is already registered.", code="duplicate") from None
    log_entry_write(
        actor=actor, action="prescriber.create", outcome="recorded", object_type="prescriber",
        object_id=prescriber.pk, prescriber_id=prescriber.pk, now=now, detail={"npi": npi},
    )
    return prescriber


@transaction.atomic
def pharmacy_create(*, actor, ncpdp_id, npi, name, now):
    ncpdp_id = ncpdp_parse(ncpdp_id)
    npi = npi_parse(npi)
    if Pharmacy.objects.filter(Q(ncpdp_id=ncpdp_id) | Q(npi=npi)).exists() or Prescriber.objects.filter(npi=npi).exists():
        raise CannotRegister("A party with this NCPDP provider ID or NPI is already registered.", code="duplicate")
    try:
        with transaction.atomic():
            pharmacy = Pharmacy.objects.create(ncpdp_id=ncpdp_id, npi=npi, name=name)
    except IntegrityError:
        raise CannotRegister("A party with this NCPDP provider ID or NPI is already registered.", code="duplicate") from None
    log_entry_write(
        actor=actor, action="pharmacy.create", outcome="recorded", object_type="pharmacy", object_id=pharmacy.pk,
        pharmacy_id=pharmacy.pk, now=now, detail={"ncpdp_id": ncpdp_id, "npi": npi},
    )
    return pharmacy


# --- Certifications -------------------------------------------------------------------------------------
class CannotCertify(ActionRefused):
    pass


class CannotChangeCertification(ActionRefused):
    pass


def _party_ids(certification):
    return {"prescriber_id": certification.prescriber_id, "pharmacy_id": certification.pharmacy_id}


@transaction.atomic
def certification_create(*, actor, program, now, prescriber=None, pharmacy=None):
    """The administrator records that training and the agreement are complete: the party is certified."""
    assert (prescriber is None) != (pharmacy is None)
    party = {"prescriber": prescriber} if prescriber else {"pharmacy": pharmacy}
    existing = Certification.objects.select_for_update().filter(program=program, **party)
    if existing.filter(status=Status.REVOKED).exists():
        raise CannotCertify("This party's certification in the program was revoked; revocation is permanent.")
    live = existing.filter(status__in=[Status.PENDING, Status.ACTIVE, Status.SUSPENDED]).first()
    if live is not None:
        if live.expires_at > now:
            raise CannotCertify(f"This party already has a {live.status} certification in the program.")
        certification_expire(certification=live, now=now)
    rule_set = rule_set_in_force(program=program, now=now)
    if rule_set.parameters is None:
        raise CannotCertify(f"No valid rule set is in force for {program.slug}; certification period unknown.",
                            status=422)
    months = (
        rule_set.parameters.prescriber_certification_months
        if prescriber
        else rule_set.parameters.pharmacy_certification_months
    )
    try:
        with transaction.atomic():
            certification = Certification.objects.create(
                program=program, status=Status.ACTIVE, certified_at=now, expires_at=now + _months(months),
                status_changed_at=now, **party,
            )
    except IntegrityError:
        raise CannotCertify("This party already has a live certification in the program.") from None
    log_entry_write(
        actor=actor, action="certification.create", outcome="active", object_type="certification",
        object_id=certification.pk, program=program.slug, rule_set=rule_set.label, now=now,
        detail={"expires_at": certification.expires_at.isoformat()}, **_party_ids(certification),
    )
    return certification


def certification_expire(*, certification, now):
    changed = Certification.objects.filter(
        pk=certification.pk, status__in=[Status.PENDING, Status.ACTIVE, Status.SUSPENDED], expires_at__lte=now
    ).update(status=Status.EXPIRED, status_changed_at=now, status_reason="certification period ended")
    if changed:
        log_entry_write(
            actor=None, action="certification.expire", outcome="expired", object_type="certification",
            object_id=certification.pk, program=certification.program.slug, now=now, **_party_ids(certification),
        )
    return changed


_PAST = {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked"}
_CERTIFICATION_TRANSITIONS = {
    # action: (from statuses, to status)
    "suspend": ([Status.ACTIVE, Status.PENDING], Status.SUSPENDED),
    "reinstate": ([Status.SUSPENDED], Status.ACTIVE),
    "revoke": ([Status.PENDING, Status.ACTIVE, Status.SUSPENDED], Status.REVOKED),
}


@transaction.atomic
def certification_change_status(*, actor, certification, action, reason, now):
    """Suspend, reinstate or revoke, as one conditional update: the row changes only from an allowed status."""
    from_statuses, to_status = _CERTIFICATION_TRANSITIONS[action]
    rows = Certification.objects.filter(pk=certification.pk, status__in=from_statuses)
    if action == "reinstate":
        rows = rows.filter(expires_at__gt=now)
    changed = rows.update(status=to_status, status_changed_at=now, status_reason=reason)
    certification.refresh_from_db()
    if not changed:
        raise CannotChangeCertification(
            f"A {certification.status} certification cannot be {_PAST[action]}"
            + (" after its expiry" if action == "reinstate" and certification.status == Status.SUSPENDED else "")
            + "."
        )
    log_entry_write(
        actor=actor, action=f"certification.{action}", outcome=to_status, object_type="certification",
        object_id=certification.pk, program=certification.program.slug, now=now, detail={"reason": reason},
        **_party_ids(certification),
    )
    return certification


# --- Patients -------------------------------------------------------------------------------------------
class CannotEnroll(ActionRefused):
    status = 422


def _check_agreement_date(agreement_signed_on, now, *, date_of_birth=None):
    if agreement_signed_on > (now + CLOCK_SKEW).date():
        raise CannotEnroll("The agreement cannot be signed in the future.", code="invalid")
    if date_of_birth and agreement_signed_on < date_of_birth:
        raise CannotEnroll("The agreement cannot be signed before the patient's birth.", code="invalid")


@transaction.atomic
def patient_enroll(
    *, actor, prescriber, program, first_name, last_name, date_of_birth, risk_category, agreement_signed_on,
    irregular_cycles, now,
):
    if date_of_birth > now.date():
        raise CannotEnroll("The date of birth cannot be in the future.", code="invalid")
    _check_plausible(date_of_birth, "The date of birth", CannotEnroll)
    _check_agreement_date(agreement_signed_on, now, date_of_birth=date_of_birth)
    # Patients are enrolled by a certified prescriber.
    if not certification_is_active(program_id=program.pk, prescriber_id=prescriber.pk, now=now):
        raise CannotEnroll(
            f"The prescriber is not actively certified in {program.slug}; only a certified prescriber enrolls patients.",
            code="prescriber_not_certified",
        )
    try:
        with transaction.atomic():
            patient = Patient.objects.create(
                program=program, prescriber=prescriber, first_name=first_name.strip(), last_name=last_name.strip(),
                date_of_birth=date_of_birth, risk_category=risk_category, agreement_signed_on=agreement_signed_on,
                irregular_cycles=irregular_cycles, status=Status.ACTIVE, enrolled_at=now, status_changed_at=now,
            )
    except IntegrityError:
        raise CannotEnroll(
            f"A patient with this name and date of birth is already enrolled in {program.slug}; one person has one "
            "enrollment. Ask the program administrator to transfer it if the patient changed prescriber.",
            code="already_enrolled", status=409,
        ) from None
    log_entry_write(
        actor=actor, action="patient.enroll", outcome=Status.ACTIVE, object_type="patient", object_id=patient.pk,
        program=program.slug, patient_id=patient.pk, prescriber_id=prescriber.pk, now=now,
        detail={"risk_category": risk_category, "agreement_signed_on": agreement_signed_on.isoformat()},
    )
    return patient


@transaction.atomic
def patient_change_risk_category(*, actor, patient, risk_category, agreement_signed_on, irregular_cycles, reason,
                                 now):
    """A new risk category needs a new Patient-Prescriber Agreement, signed no earlier than the current one, and
    the prescriber's reason (for example the basis for "not of reproductive potential"), which is logged."""
    patient = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    _check_agreement_date(agreement_signed_on, now, date_of_birth=patient.date_of_birth)
    if agreement_signed_on < patient.agreement_signed_on:
        raise CannotEnroll("The new agreement cannot be older than the one on file.", code="invalid")
    before = {"risk_category": patient.risk_category, "agreement_signed_on": patient.agreement_signed_on.isoformat()}
    patient.risk_category = risk_category
    patient.agreement_signed_on = agreement_signed_on
    if irregular_cycles is not None:
        patient.irregular_cycles = irregular_cycles
    patient.save(update_fields=["risk_category", "agreement_signed_on", "irregular_cycles"])
    log_entry_write(
        actor=actor, action="patient.change_risk_category", outcome="changed", object_type="patient",
        object_id=patient.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=patient.prescriber_id, now=now,
        detail={"reason": reason, "before": before, "after": {"risk_category": risk_category,
                                            "agreement_signed_on": agreement_signed_on.isoformat(),
                                            "irregular_cycles": patient.irregular_cycles}},
    )
    return patient


class CannotChangeEnrollment(ActionRefused):
    pass


_ENROLLMENT_TRANSITIONS = {
    "suspend": ([Status.ACTIVE], Status.SUSPENDED),
    "reinstate": ([Status.SUSPENDED], Status.ACTIVE),
}


@transaction.atomic
def patient_change_status(*, actor, patient, action, reason, now):
    from_statuses, to_status = _ENROLLMENT_TRANSITIONS[action]
    changed = Patient.objects.filter(pk=patient.pk, status__in=from_statuses).update(
        status=to_status, status_reason=reason, status_changed_at=now
    )
    patient.refresh_from_db()
    if not changed:
        raise CannotChangeEnrollment(f"A {patient.status} enrollment cannot be {_PAST[action]}.")
    log_entry_write(
        actor=actor, action=f"patient.{action}", outcome=to_status, object_type="patient", object_id=patient.pk,
        program=patient.program.slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id, now=now,
        detail={"reason": reason},
    )
    return patient


# --- Pregnancy tests, attestations, surveys -------------------------------------------------------------
class CannotRecord(ActionRefused):
    status = 422


def _check_not_future(moment, now, what):
    if moment > now + CLOCK_SKEW:
        raise CannotRecord(f"{what} cannot be in the future.", code="invalid")
    _check_plausible(moment.date(), what, CannotRecord)


@transaction.atomic
def pregnancy_test_record(*, actor, patient, collected_at, result, sensitivity_miu_ml, now):
    _check_not_future(collected_at, now, "The collection time")
    if patient.risk_category in MALE_CATEGORIES:
        raise CannotRecord("Pregnancy tests are not recorded for a male patient.", code="not_applicable")
    if collected_at.date() < patient.date_of_birth:
        raise CannotRecord("The collection time is before the patient's birth.", code="invalid")
    # Serialises with dispense confirmations, which lock the same patient row first.
    patient = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    test = PregnancyTest.objects.create(
        patient=patient, collected_at=collected_at, result=result, sensitivity_miu_ml=sensitivity_miu_ml,
        recorded_at=now, recorded_by=actor,
    )
    log_entry_write(
        actor=actor, action="pregnancy_test.record", outcome=result, object_type="pregnancy_test", object_id=test.pk,
        program=patient.program.slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id, now=now,
        detail={"collected_at": collected_at.isoformat(), "sensitivity_miu_ml": sensitivity_miu_ml},
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
            actor=actor, action="patient.suspend", outcome=Status.SUSPENDED, object_type="patient",
            object_id=patient.pk, program=patient.program.slug, patient_id=patient.pk,
            prescriber_id=patient.prescriber_id, now=now, detail={"reason": reason, "pregnancy_test": str(test.pk)},
        )
    report = PregnancyReport.objects.create(patient=patient, pregnancy_test=test, opened_at=now)
    positive_test_alert(patient=patient, test=test, report=report, now=now)
    log_entry_write(
        actor=actor, action="pregnancy_report.open", outcome="opened", object_type="pregnancy_report",
        object_id=report.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=patient.prescriber_id, now=now, detail={"pregnancy_test": str(test.pk)},
    )
    return report


@transaction.atomic
def attestation_record(*, actor, patient, kind, now, methods=(), abstinence=False, started_on=None):
    if kind == AttestationKind.CONTRACEPTION:
        if patient.risk_category not in REPRODUCTIVE_CATEGORIES:
            raise CannotRecord(
                "Contraception is attested for females of reproductive potential only.", code="not_applicable"
            )
        if started_on is None:
            raise CannotRecord("Give the date contraception started.", code="required")
        if started_on > (now + CLOCK_SKEW).date():
            raise CannotRecord("The date contraception started cannot be in the future.", code="invalid")
        _check_plausible(started_on, "The date contraception started", CannotRecord)
    elif kind == AttestationKind.MALE_COUNSELING:
        if patient.risk_category not in MALE_CATEGORIES:
            raise CannotRecord("Condom counseling is attested for male patients only.", code="not_applicable")
        methods, abstinence, started_on = (), False, None
    attestation = Attestation.objects.create(
        patient=patient, kind=kind, methods=list(methods), abstinence=abstinence, started_on=started_on,
        attested_at=now, attested_by=actor,
    )
    log_entry_write(
        actor=actor, action=f"attestation.{kind}", outcome="recorded", object_type="attestation",
        object_id=attestation.pk, program=patient.program.slug, patient_id=patient.pk,
        prescriber_id=patient.prescriber_id, now=now,
        detail={"methods": list(methods), "abstinence": abstinence,
                "started_on": started_on.isoformat() if started_on else None},
    )
    return attestation


@transaction.atomic
def survey_record(*, actor, patient, completed_at, now):
    _check_not_future(completed_at, now, "The completion time")
    survey = PatientSurvey.objects.create(patient=patient, completed_at=completed_at, recorded_at=now, recorded_by=actor)
    log_entry_write(
        actor=actor, action="survey.record", outcome="recorded", object_type="patient_survey", object_id=survey.pk,
        program=patient.program.slug, patient_id=patient.pk, prescriber_id=patient.prescriber_id, now=now,
        detail={"completed_at": completed_at.isoformat()},
    )
    return survey


# --- Programs and rule sets -----------------------------------------------------------------------------
class CannotLoadProgram(ActionRefused):
    status = 400
    code = "invalid_program"


@transaction.atomic
def program_load(*, actor, data, now):
    """Create or complete a program from its data file: products and effective-dated rule sets.

    Loading is idempotent. A rule set, once loaded, never changes: old decisions must stay explainable under
    the rules they were made with, so a new version of the rules is a new rule set with its own date.
    Returns the program and the labels of the rule sets newly loaded.
    """
    try:
        slug, name = data["slug"], data["name"]
        products, rule_sets = data.get("products", []), data.get("rule_sets", [])
    except (KeyError, TypeError) as exc:
        raise CannotLoadProgram(f"Program data lacks {exc}.") from None
    program, _ = Program.objects.get_or_create(slug=slug, defaults={"name": name})
    for item in products:
        ndc = ndc_parse(item["ndc"])
        product, created = Product.objects.get_or_create(
            ndc=ndc, defaults={"program": program, "name": item["name"], "strength_mg": item["strength_mg"],
                               "package_size": item["package_size"]},
        )
        if product.program_id != program.pk:
            raise CannotLoadProgram(f"NDC {ndc} already belongs to another program.")
    loaded = []
    for item in rule_sets:
        try:
            RuleParameters.from_dict(item["parameters"])
            effective_at = datetime.fromisoformat(item["effective_at"].replace("Z", "+00:00"))
        except (InvalidRuleSet, KeyError, ValueError, AttributeError) as exc:
            raise CannotLoadProgram(f"Rule set {item.get('version')!r} of {slug} is invalid: {exc}") from None
        if effective_at.tzinfo is None:
            raise CannotLoadProgram(f"Rule set {item['version']!r}: effective_at needs an offset.")
        existing = RuleSet.objects.filter(program=program, version=item["version"]).first()
        if existing is not None:
            if existing.parameters != item["parameters"] or existing.effective_at != effective_at:
                raise CannotLoadProgram(
                    f"Rule set {slug}@{item['version']} is already loaded with other values; rule sets never change, "
                    "load the new rules as a new version."
                )
            continue
        rule_set = RuleSet.objects.create(
            program=program, version=item["version"], effective_at=effective_at, parameters=item["parameters"],
            sources=item.get("sources", {}),
        )
        loaded.append(rule_set.label)
        log_entry_write(
            actor=actor, action="rule_set.load", outcome="loaded", object_type="rule_set", object_id=rule_set.pk,
            program=slug, rule_set=rule_set.label, now=now,
            detail={"effective_at": effective_at.isoformat(), "parameters": item["parameters"]},
        )
    return program, loaded
