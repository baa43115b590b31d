"""One enumeration of actions, one writer: entries written under an action's earlier name stay as they were, and
filters and reports find them beside the entries written under its current name."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from rems.compliance_log.actions import LEGACY_NAMES, Action, names_for
from rems.compliance_log.models import ComplianceLogEntry
from rems.compliance_log.writer import COLUMNS, log_entry_write, log_insert_sql

from .flows import confirm_dispense, enroll, prescribe, request_rda

pytestmark = pytest.mark.django_db


def _earlier_entry(action, *, prescription_id=None, detail=None, occurred_at=None):
    """An entry as the service wrote it before the action was renamed (straight into the table: today's writer
    takes members of Action only)."""
    return ComplianceLogEntry.objects.create(
        occurred_at=occurred_at or timezone.now(), action=action, outcome="recorded", object_type="legacy",
        object_id=str(uuid.uuid4()), program="pomalidomide", prescription_id=prescription_id, detail=detail or {},
        actor_username="system", actor_role="system",
    )


def _actions(api, world, query):
    status, page = api.get(f"/api/v1/audit-events/?page_size=200&{query}", as_=world["auditor"])
    assert status == 200, page
    return sorted(e["action"] for e in page["results"])


def test_the_writer_takes_members_of_the_enumeration_only():
    with pytest.raises(TypeError):
        log_entry_write(actor=None, action="dispense.confirm", outcome="x", object_type="t", object_id="1",
                        now=timezone.now())
    assert not ComplianceLogEntry.objects.exists()


def test_the_writer_and_the_set_based_writer_share_the_columns():
    written = {f.column for f in ComplianceLogEntry._meta.concrete_fields}
    set_by_the_database = {"seq", "recorded_at", "hash_version", "chain", "chain_index", "content_hash", "entry_hash"}
    assert set(COLUMNS) == written - set_by_the_database
    sql = log_insert_sql(action=Action.PRESCRIPTION_EXPIRE, source="FROM expired e",
                         expressions={"occurred_at": "%(now)s", "outcome": "'expired'",
                                      "object_type": "'prescription'", "object_id": "e.id::text"})
    assert f"({', '.join(COLUMNS)}) SELECT" in sql and "'prescription.expire'" in sql
    with pytest.raises(ValueError, match="missing"):
        log_insert_sql(action=Action.PRESCRIPTION_EXPIRE, source="FROM e", expressions={"occurred_at": "now()"})
    for column in ("action", "actor_username", "actor_role"):  # the writer's, never the caller's
        with pytest.raises(ValueError, match="not the caller's"):
            log_insert_sql(action=Action.PRESCRIPTION_EXPIRE, source="FROM expired e", expressions={
                "occurred_at": "%(now)s", "outcome": "'expired'", "object_type": "'prescription'",
                "object_id": "e.id::text", column: "'anything.goes'"})


def test_every_earlier_name_means_a_current_action():
    assert set(LEGACY_NAMES).isdisjoint(a.value for a in Action)
    assert all(isinstance(action, Action) for action, _ in LEGACY_NAMES.values())
    assert names_for("no.such_action") == [(["no.such_action"], None)]


def test_a_filter_finds_a_dispense_under_its_earlier_and_its_current_name(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    _, rda = request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"])
    confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])
    _earlier_entry("dispense.confirm")

    both = ["dispense.confirm", Action.DISPENSE_AUTHORIZATION_DISPENSE]
    assert _actions(api, world, f"action={Action.DISPENSE_AUTHORIZATION_DISPENSE}") == both
    assert _actions(api, world, "action=dispense.confirm") == both
    assert ComplianceLogEntry.objects.filter(action="dispense.confirm").count() == 1  # left as it was written


def test_an_earlier_attestation_name_finds_only_its_own_kind(api, world):
    _earlier_entry("attestation.contraception")
    _earlier_entry("attestation.male_counseling")
    log_entry_write(actor=None, action=Action.ATTESTATION_RECORD, outcome="recorded", object_type="attestation",
                    object_id="1", now=timezone.now(), detail={"kind": "contraception"})
    log_entry_write(actor=None, action=Action.ATTESTATION_RECORD, outcome="recorded", object_type="attestation",
                    object_id="2", now=timezone.now(), detail={"kind": "male_counseling"})

    assert _actions(api, world, "action=attestation.contraception") == [
        "attestation.contraception", Action.ATTESTATION_RECORD]
    assert len(_actions(api, world, f"action={Action.ATTESTATION_RECORD}")) == 4


def test_reports_count_a_dispense_written_under_its_earlier_name(api, world):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    # the dispense of this authorization, as written before the rename, an hour after the authorization
    _earlier_entry("dispense.confirm", prescription_id=decision["prescription_id"],
                   occurred_at=timezone.now() + timedelta(hours=1))

    status, report = api.get("/api/v1/reports/?period=year", as_=world["auditor"])

    assert status == 200
    [row] = report["time_to_dispense"]
    assert row["dispenses"] == 1 and 0.9 < row["median_hours"] < 1.1
