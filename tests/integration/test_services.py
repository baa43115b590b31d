"""Services against the real PostgreSQL: state changes, their log entries, constraints and sweeps."""

import json
from copy import deepcopy
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import CannotDeactivateSelf, user_deactivate
from dispensing import dispenses, prescriptions, sweeps
from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.program import certifications, programs, records
from rems.program.certifications import CannotCertify, CannotChangeCertification
from rems.program.models import Certification, Program
from rems.program.programs import BUNDLED, CannotLoadProgram
from rems.program.validation import InvalidValue
from tests.factories import PatientFactory, PharmacyFactory, PrescriberFactory

pytestmark = pytest.mark.django_db
NDC = "59572-0504-21"


def _authorize(party, patient, now, **kwargs):
    values = {"ndc": NDC, "quantity": 21, "days_supply": 28, **kwargs}
    return prescriptions.prescription_authorize(actor=party.users["prescriber"], patient=patient, now=now, **values)


def _rda(party, patient, prescription, now, **kwargs):
    values = {"ndc": NDC, "quantity": prescription.quantity, "days_supply": prescription.days_supply, **kwargs}
    return dispenses.dispense_authorization_request(
        actor=party.users["pharmacist"], pharmacy=party.pharmacy, authorization_number=prescription.authorization_number,
        date_of_birth=patient.date_of_birth, now=now, **values,
    )


def _dispense(party, rda, now):
    return dispenses.dispense_confirm(actor=party.users["pharmacist"], rda=rda, counseling_confirmed=True,
                                      medication_guide_provided=True, now=now)


# --- Certifications -------------------------------------------------------------------------------------
def test_certification_lifecycle_is_logged(program):
    now = timezone.now()
    prescriber = PrescriberFactory()
    certification = certifications.certification_create(actor=None, program=program, prescriber=prescriber, now=now)
    assert certification.status == "active"
    assert (certification.expires_at - now).days in (730, 731)

    certifications.certification_change_status(actor=None, certification=certification, action="suspend", reason="r", now=now)
    certifications.certification_change_status(actor=None, certification=certification, action="reinstate", reason="r",
                                         now=now)
    certifications.certification_change_status(actor=None, certification=certification, action="revoke", reason="r", now=now)

    actions = list(ComplianceLogEntry.objects.filter(object_id=str(certification.pk)).order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["certification.create", "certification.suspend", "certification.reinstate",
                       "certification.revoke"]
    with pytest.raises(CannotChangeCertification):
        certifications.certification_change_status(actor=None, certification=certification, action="reinstate", reason="r",
                                             now=now)
    with pytest.raises(CannotCertify, match="permanent"):
        certifications.certification_create(actor=None, program=program, prescriber=prescriber, now=now)


def test_a_second_live_certification_is_refused_and_an_expired_one_renewed(program):
    now = timezone.now()
    pharmacy = PharmacyFactory()
    first = certifications.certification_create(actor=None, program=program, pharmacy=pharmacy, now=now - timedelta(days=400))
    assert (first.expires_at - first.certified_at).days == 365

    renewed = certifications.certification_create(actor=None, program=program, pharmacy=pharmacy, now=now)

    first.refresh_from_db()
    assert first.status == "expired" and renewed.status == "active"
    with pytest.raises(CannotCertify):
        certifications.certification_create(actor=None, program=program, pharmacy=pharmacy, now=now)


def test_the_database_refuses_two_live_certifications(program):
    prescriber = PrescriberFactory()
    now = timezone.now()
    certifications.certification_create(actor=None, program=program, prescriber=prescriber, now=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Certification.objects.create(program=program, prescriber=prescriber, status="suspended", certified_at=now,
                                     expires_at=now, status_changed_at=now)


# --- Constraints ----------------------------------------------------------------------------------------
def test_the_database_refuses_a_second_open_prescription(world, program):
    ours = world["ours"]
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _, _, prescription = _authorize(ours, patient, timezone.now())
    duplicate = Prescription(
        **{f.attname: getattr(prescription, f.attname) for f in Prescription._meta.concrete_fields
           if f.attname not in ("id", "authorization_number")},
        authorization_number="P0000000000X",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save(force_insert=True)


def test_the_database_refuses_a_second_live_rda(world, program):
    ours = world["ours"]
    now = timezone.now()
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _, _, prescription = _authorize(ours, patient, now)
    _, _, rda = _rda(ours, patient, prescription, now)
    with pytest.raises(IntegrityError), transaction.atomic():
        DispenseAuthorization.objects.create(
            rda_number="R0000000000X", prescription=prescription, pharmacy=ours.pharmacy,
            requested_by=ours.users["pharmacist"], product=rda.product, quantity=1, days_supply=1, rule_set="x",
            status="approved", approved_at=now, expires_at=now, status_changed_at=now, decision_id=rda.decision_id,
        )


# --- Sweeps ---------------------------------------------------------------------------------------------
def test_the_sweep_expires_what_lapsed_and_a_rerun_changes_nothing(world, program):
    ours = world["ours"]
    now = timezone.now()
    stale = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    held = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    fresh = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _, _, old_rx = _authorize(ours, stale, now - timedelta(days=31))
    _, _, held_rx = _authorize(ours, held, now - timedelta(days=2))
    _, _, rda = _rda(ours, held, held_rx, now - timedelta(days=2))
    _, _, fresh_rx = _authorize(ours, fresh, now)

    counts = sweeps.expire_lapsed(now=now)

    assert counts == {"dispense_authorizations": 1, "prescriptions": 1, "certifications": 0, "idempotency_records": 0}
    assert Prescription.objects.get(pk=old_rx.pk).status == "expired"
    assert DispenseAuthorization.objects.get(pk=rda.pk).status == "expired"
    assert Prescription.objects.get(pk=held_rx.pk).status == "issued"  # freed: still valid
    assert Prescription.objects.get(pk=fresh_rx.pk).status == "issued"
    assert sweeps.expire_lapsed(now=now) == {
        "dispense_authorizations": 0, "prescriptions": 0, "certifications": 0, "idempotency_records": 0}
    assert ComplianceLogEntry.objects.filter(action__endswith=".expire").count() == 2


def test_the_sweeps_log_entries_are_those_of_the_single_row_services_and_the_chains_verify(world, program):
    from rems.compliance_log.verify import log_verify

    ours = world["ours"]
    now = timezone.now()
    entries = {}
    for path in ("sweep", "single"):
        old = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
        held = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
        _, _, old_rx = _authorize(ours, old, now - timedelta(days=31))
        _, _, held_rx = _authorize(ours, held, now - timedelta(days=2))
        _, _, rda = _rda(ours, held, held_rx, now - timedelta(days=2))
        if path == "sweep":
            sweeps.expire_lapsed(now=now)
        else:
            prescriptions.prescription_expire(prescription_id=old_rx.pk, now=now)
            dispenses.rda_expire(rda_id=rda.pk, now=now)
        for kind, object_id in (("prescription.expire", old_rx.pk), ("dispense_authorization.expire", rda.pk)):
            entry = ComplianceLogEntry.objects.get(action=kind, object_id=str(object_id))
            entries[(path, kind)] = entry
            assert (entry.patient_id, entry.prescription_id) == (
                (old.pk, old_rx.pk) if kind == "prescription.expire" else (held.pk, held_rx.pk))
    fields = ["action", "outcome", "actor_user_id", "actor_username", "actor_role", "actor_prescriber_id",
              "actor_pharmacy_id", "program", "object_type", "prescriber_id", "pharmacy_id", "rule_set", "checks",
              "facts", "occurred_at", "hash_version"]
    for kind in ("prescription.expire", "dispense_authorization.expire"):
        sweep, single = entries[("sweep", kind)], entries[("single", kind)]
        assert {f: getattr(sweep, f) for f in fields + ["request_id"]} == {
            f: getattr(single, f) for f in fields + ["request_id"]}
        assert sweep.detail == ({} if kind == "prescription.expire" else {"rda_number": sweep.detail["rda_number"]})
        assert single.detail.keys() == sweep.detail.keys()
    assert entries[("sweep", "dispense_authorization.expire")].pharmacy_id == ours.pharmacy.pk
    rda_entry = entries[("sweep", "dispense_authorization.expire")]
    assert rda_entry.detail["rda_number"] == DispenseAuthorization.objects.get(pk=rda_entry.object_id).rda_number
    for status_reason in ("validity ended", "not dispensed in time"):
        assert (Prescription.objects.filter(status_reason=status_reason).count()
                + DispenseAuthorization.objects.filter(status_reason=status_reason).count()) == 2
    assert log_verify().ok


def test_an_approved_rda_left_on_an_expired_authorization_is_expired_too(world, program):
    """Whatever the authorization's status, an approved RDA past its expiry is expired by the sweep, with its log
    entry (for example one approved just as its authorization lapsed)."""
    ours = world["ours"]
    now = timezone.now()
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _, _, prescription = _authorize(ours, patient, now - timedelta(days=2))
    _, _, rda = _rda(ours, patient, prescription, now - timedelta(days=2))
    Prescription.objects.filter(pk=prescription.pk).update(status="expired")  # as if expired under the RDA's feet

    assert sweeps.expire_lapsed(now=now)["dispense_authorizations"] == 1
    assert DispenseAuthorization.objects.get(pk=rda.pk).status == "expired"
    assert Prescription.objects.get(pk=prescription.pk).status == "expired"  # not reopened
    assert ComplianceLogEntry.objects.filter(action="dispense_authorization.expire", object_id=str(rda.pk)).exists()


def test_inside_a_transaction_the_sweep_uses_the_callers_connection_only(world, program):
    ours = world["ours"]
    now = timezone.now()
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _authorize(ours, patient, now - timedelta(days=31))
    # the test runs inside a transaction: other connections would not even see this authorization
    assert sweeps.expire_lapsed(now=now, workers=4)["prescriptions"] == 1


def test_the_sweep_works_in_batches(world, program):
    ours = world["ours"]
    now = timezone.now()
    for _ in range(7):
        patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
        _authorize(ours, patient, now - timedelta(days=31))

    assert sweeps.expire_lapsed(now=now, batch_size=3)["prescriptions"] == 7


def test_a_decision_does_not_wait_for_the_sweep(world, program):
    ours = world["ours"]
    now = timezone.now()
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _, _, lapsed = _authorize(ours, patient, now - timedelta(days=31))

    decision, _, prescription = _authorize(ours, patient, now)

    assert decision.approved, decision.failed_codes
    assert Prescription.objects.get(pk=lapsed.pk).status == "expired"


# --- Therapy --------------------------------------------------------------------------------------------
def test_frp_second_prescription_follows_the_testing_interval(world, program):
    ours = world["ours"]
    start = timezone.now() - timedelta(days=10)
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FRP_ADULT")
    prescriber = ours.users["prescriber"]
    for ago in (timedelta(days=12), timedelta(hours=2)):
        records.pregnancy_test_record(actor=prescriber, patient=patient, collected_at=start - ago, result="negative",
                                       sensitivity_miu_ml=25, now=start)
    records.attestation_record(actor=prescriber, patient=patient, kind="contraception", methods=["IUD", "MALE_CONDOM"],
                                started_on=(start - timedelta(days=40)).date(), now=start)
    _, _, first = _authorize(ours, patient, start, quantity=7, days_supply=7)
    _, _, rda = _rda(ours, patient, first, start)
    _dispense(ours, rda, start)
    later = start + timedelta(days=7)

    decision, _, _ = _authorize(ours, patient, later, quantity=7, days_supply=7)
    assert {"PREGNANCY_TEST_INTERVAL", "PREGNANCY_TEST_RECENT", "CONTRACEPTION_ATTESTED",
            "SURVEY_COMPLETED"} <= set(decision.failed_codes)
    assert "PREGNANCY_TEST_FIRST" not in {c.code for c in decision.checks}

    records.pregnancy_test_record(actor=prescriber, patient=patient, collected_at=later - timedelta(hours=3),
                                   result="negative", sensitivity_miu_ml=25, now=later)
    records.attestation_record(actor=prescriber, patient=patient, kind="contraception", methods=["IUD", "MALE_CONDOM"],
                                started_on=(start - timedelta(days=40)).date(), now=later)
    records.survey_record(actor=prescriber, patient=patient, completed_at=later - timedelta(hours=1), now=later)
    decision, _, second = _authorize(ours, patient, later, quantity=7, days_supply=7)
    assert decision.approved, decision.failed_codes


def test_next_fill_counts_the_supply_actually_dispensed(world, program):
    ours = world["ours"]
    start = timezone.now() - timedelta(days=20)
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _, _, prescription = _authorize(ours, patient, start)
    _, _, rda = _rda(ours, patient, prescription, start, quantity=14, days_supply=14)
    _dispense(ours, rda, start)

    # 14 days dispensed 20 days ago: the supply has run out, whatever the prescription allowed.
    decision, _, _ = _authorize(ours, patient, timezone.now())
    assert "NEXT_FILL_TIMING" not in decision.failed_codes
    # 8 days after the dispense, 6 days remain: allowed; at 6 days after, 8 remain: refused.
    assert "NEXT_FILL_TIMING" not in _authorize_dry(ours, patient, start + timedelta(days=8))
    assert "NEXT_FILL_TIMING" in _authorize_dry(ours, patient, start + timedelta(days=6))


def _authorize_dry(party, patient, now):
    with transaction.atomic():
        decision, _, _ = _authorize(party, patient, now)
        transaction.set_rollback(True)
    return decision.failed_codes


def test_reversing_the_first_dispense_resets_the_therapy_start(world, program):
    ours = world["ours"]
    now = timezone.now()
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    _, _, prescription = _authorize(ours, patient, now)
    _, _, rda = _rda(ours, patient, prescription, now)
    _dispense(ours, rda, now)
    patient.refresh_from_db()
    assert patient.therapy_started_at == now

    dispenses.dispense_reverse(actor=ours.users["pharmacist"], rda=rda, reason="returned to stock", now=now)

    patient.refresh_from_db()
    prescription.refresh_from_db()
    assert patient.therapy_started_at is None
    assert prescription.status == "cancelled" and prescription.dispensed_at is None
    # the authorization is never dispensed twice
    decision, _, second = _rda(ours, patient, prescription, now)
    assert not decision.approved and "AUTHORIZATION_UNUSED" in decision.failed_codes and second is None


# --- Rule sets ------------------------------------------------------------------------------------------
def _pomalidomide():
    return json.loads((BUNDLED / "pomalidomide.json").read_text())


def test_loading_a_program_twice_changes_nothing(program):
    _, loaded = programs.program_load(actor=None, data=_pomalidomide(), now=timezone.now())
    assert loaded == []


def test_a_loaded_rule_set_never_changes(program):
    data = _pomalidomide()
    data["rule_sets"][0]["parameters"]["max_days_supply"] = 30
    with pytest.raises(CannotLoadProgram, match="never change"):
        programs.program_load(actor=None, data=data, now=timezone.now())


def test_decisions_use_the_rule_set_in_force_and_record_it(world, program):
    ours = world["ours"]
    now = timezone.now()
    data = _pomalidomide()
    newer = deepcopy(data["rule_sets"][0])
    newer["version"] = "next"
    newer["effective_at"] = (now + timedelta(minutes=5)).isoformat()
    newer["parameters"]["max_days_supply"] = 21
    data["rule_sets"].append(newer)
    programs.program_load(actor=None, data=data, now=now)
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")

    old = _authorize_dry_decision(ours, patient, now + timedelta(minutes=5) - timedelta(microseconds=1),
                                  days_supply=28)
    assert old.rule_set == "pomalidomide@2025-01-01" and old.approved
    current = _authorize_dry_decision(ours, patient, now + timedelta(minutes=5), days_supply=28)
    assert current.rule_set == "pomalidomide@next"
    assert "DAYS_SUPPLY_LIMIT" in current.failed_codes


def test_a_new_version_of_a_program_in_use_never_takes_effect_in_the_past(program):
    data = _pomalidomide()
    newer = deepcopy(data["rule_sets"][0])
    newer.update(version="late", effective_at=(timezone.now() - timedelta(seconds=1)).isoformat())
    data["rule_sets"].append(newer)
    with pytest.raises(CannotLoadProgram, match="in the past"):
        programs.program_load(actor=None, data=data, now=timezone.now())


def _authorize_dry_decision(party, patient, now, **kwargs):
    with transaction.atomic():
        Prescription.objects.filter(patient=patient).update(status="cancelled")
        decision, _, _ = _authorize(party, patient, now, **kwargs)
        transaction.set_rollback(True)
    return decision


def test_an_invalid_rule_set_in_force_fails_closed(world, program):
    from rems.program.models import RuleSet

    ours = world["ours"]
    now = timezone.now()
    RuleSet.objects.create(program=program, version="broken", effective_at=now - timedelta(minutes=1),
                           parameters={"max_days_supply": 28})
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")

    decision, entry, prescription = _authorize(ours, patient, now)

    assert not decision.approved and prescription is None
    assert decision.failed_codes == ["RULE_SET_IN_FORCE"]
    assert entry.outcome == "denied"


# --- Checks every caller gets, not only the API ---------------------------------------------------------
@pytest.mark.parametrize("kind, category, values, field", [
    ("contraception", "FRP_ADULT", {"methods": ["IUD"], "abstinence": True}, "methods"),
    ("contraception", "FRP_ADULT", {"methods": []}, "methods"),
    ("contraception", "FRP_ADULT", {"methods": ["IUD", "IUD"]}, "methods"),
    ("contraception", "FRP_ADULT", {"methods": ["IUD"], "started_on": None}, "started_on"),
    ("male_counseling", "MALE_ADULT", {"methods": ["MALE_CONDOM"]}, ""),
])
def test_an_attestation_that_contradicts_itself_is_refused_by_the_service(world, kind, category, values, field):
    patient = PatientFactory(prescriber=world["ours"].prescriber, program=Program.objects.get(slug="pomalidomide"),
                             risk_category=category)
    now = timezone.now()
    values = {"started_on": (now - timedelta(days=40)).date(), **values} if kind == "contraception" else values

    with pytest.raises(InvalidValue) as refused:
        records.attestation_record(actor=world["ours"].users["prescriber"], patient=patient, kind=kind, now=now,
                                   **values)

    assert refused.value.field == field
    assert not ComplianceLogEntry.objects.filter(patient_id=patient.pk).exists()


def test_nobody_deactivates_themselves_whatever_the_interface(world):
    admin = world["admin_user"]
    with pytest.raises(CannotDeactivateSelf):
        user_deactivate(actor=admin, user=admin, reason="mistake", now=timezone.now())
    admin.refresh_from_db()
    assert admin.is_active
