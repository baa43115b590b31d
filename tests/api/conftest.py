import json
from datetime import timedelta

import pytest
from django.utils import timezone

from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.certifications import certification_create
from rems.program.models import (
    Attestation,
    Certification,
    Patient,
    PatientSurvey,
    PregnancyReport,
    PregnancyTest,
    Program,
)
from rems.program.programs import BUNDLED, program_load


def _entries(action, **lookup):
    return ComplianceLogEntry.objects.filter(action=action, **lookup)


@pytest.fixture(autouse=True)
def every_change_has_its_log_entry(request):
    """After each API test: every decision and every change of state it made has its compliance-log entry, with
    the rule set and the check codes for decisions."""
    yield
    if not {"db", "world", "program"} & set(request.fixturenames):
        return
    for prescription in Prescription.objects.all():
        entry = ComplianceLogEntry.objects.get(id=prescription.decision_id)
        assert entry.action == "prescription.authorize" and entry.outcome == "approved"
        assert entry.rule_set == prescription.rule_set and entry.checks
        assert all(c["code"] and c["passed"] for c in entry.checks)
        # An authorization ends expired or cancelled by its own action, or by the reversal of its RDA.
        ended_by = {"expired": "prescription.expire", "cancelled": "prescription.cancel"}.get(prescription.status)
        if ended_by:
            assert (_entries(ended_by, prescription_id=prescription.pk).exists()
                    or _entries("dispense_authorization.reverse", prescription_id=prescription.pk).exists())
    for rda in DispenseAuthorization.objects.all():
        entry = ComplianceLogEntry.objects.get(id=rda.decision_id)
        assert entry.action == "dispense_authorization.request" and entry.outcome == "approved"
        assert entry.rule_set == rda.rule_set and entry.checks
        if rda.dispensed_at:
            assert _entries(Action.DISPENSE_AUTHORIZATION_DISPENSE, object_id=str(rda.pk)).exists()
        if rda.status == "reversed":
            assert _entries("dispense_authorization.reverse", object_id=str(rda.pk)).exists()
        if rda.status == "expired":
            assert _entries("dispense_authorization.expire", object_id=str(rda.pk)).exists() or _entries(
                "prescription.expire", prescription_id=rda.prescription_id).exists()
    for decision in ComplianceLogEntry.objects.filter(
            action__in=["prescription.authorize", "dispense_authorization.request"]):
        assert decision.checks and all("code" in c and "passed" in c and c["message"] for c in decision.checks)
        # Only a decision that could not know its program has no rule set: an unknown number, or a locked pharmacy.
        assert decision.rule_set or [c["code"] for c in decision.checks] in (
            ["AUTHORIZATION_FOUND"], ["MATCH_ATTEMPTS_LIMIT"])
    for model, action in ((PregnancyTest, Action.PREGNANCY_TEST_RECORD), (Attestation, Action.ATTESTATION_RECORD),
                          (PatientSurvey, Action.PATIENT_SURVEY_RECORD), (PregnancyReport, Action.PREGNANCY_REPORT_OPEN)):
        for obj in model.objects.all():
            kind = {"detail__kind": obj.kind} if model is Attestation else {}
            assert _entries(action, object_id=str(obj.pk), **kind).exists(), (action, obj.pk)
    for certification in Certification.objects.all():
        assert _entries("certification.create", object_id=str(certification.pk)).exists()
        if certification.status not in ("active", "expired"):
            verb = {"suspended": "suspend", "revoked": "revoke"}[certification.status]
            assert _entries(f"certification.{verb}", object_id=str(certification.pk)).exists()
    # Patients enrolled over the API (the factories' patients, named PatientN, are made directly for set-up).
    for patient in Patient.objects.exclude(last_name__regex=r"^Patient[0-9]+$"):
        assert _entries("patient.enroll", object_id=str(patient.pk)).exists()
        if patient.status == "suspended":
            assert _entries("patient.suspend", object_id=str(patient.pk)).exists()


@pytest.fixture
def programs(world):
    """The other three programs loaded; our prescriber and pharmacy certified in all four, theirs in
    pomalidomide only."""
    now = timezone.now() - timedelta(days=60)
    for slug in ("lenalidomide", "thalidomide", "isotretinoin"):
        program_load(actor=None, data=json.loads((BUNDLED / f"{slug}.json").read_text()), now=now)
        program = Program.objects.get(slug=slug)
        certification_create(actor=None, program=program, prescriber=world["ours"].prescriber, now=now)
        certification_create(actor=None, program=program, pharmacy=world["ours"].pharmacy, now=now)
    return world
