"""The compliance log is append-only in the database and tamper-evident through its hash chains."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry, LogChainHead
from rems.compliance_log.sql import APP_ROLE
from rems.compliance_log.verify import log_verify
from rems.compliance_log.writer import log_entry_write

pytestmark = pytest.mark.django_db


def _write(n, **kwargs):
    now = timezone.now()
    return [
        log_entry_write(actor=None, action=Action.PATIENT_SURVEY_RECORD, outcome="recorded", object_type="test", object_id=i,
                        now=now + timedelta(microseconds=i), detail={"i": i}, **kwargs)
        for i in range(n)
    ]


def _sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _refused(statement, params=()):
    # Entries written earlier in this test's transaction have their chain head written at commit; run that
    # now, as a commit would, so that the table has no pending trigger events.
    _sql("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError) as error, transaction.atomic():
        _sql(statement, params)
    return str(error.value)


@pytest.fixture
def as_app_role():
    """Act as the application's database role for the rest of the test's transaction."""
    _sql(f"SET LOCAL ROLE {APP_ROLE}")
    yield
    _sql("RESET ROLE")


def test_the_application_role_may_append_and_read_but_never_change(as_app_role):
    entry = _write(1)[0]
    assert ComplianceLogEntry.objects.filter(pk=entry.pk).exists()

    assert "permission denied" in _refused("UPDATE rems_compliancelogentry SET outcome = 'x' WHERE seq = %s",
                                           [entry.pk])
    assert "permission denied" in _refused("DELETE FROM rems_compliancelogentry WHERE seq = %s", [entry.pk])
    assert "permission denied" in _refused("TRUNCATE rems_compliancelogentry")
    assert "permission denied" in _refused("UPDATE rems_logchainhead SET last_index = 0")


def test_the_application_role_can_run_a_whole_decision(as_app_role, world):
    from tests.factories import PatientFactory

    ours = world["ours"]
    from dispensing.prescriptions import prescription_authorize
    from rems.program.models import Program

    patient = PatientFactory(prescriber=ours.prescriber, program=Program.objects.get(slug="pomalidomide"),
                             risk_category="FNRP_ADULT")
    decision, entry, prescription = prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc="59572-0504-21", quantity=21, days_supply=28,
        now=timezone.now(),
    )
    assert decision.approved and prescription is not None


def test_even_the_owner_cannot_update_delete_or_truncate():
    entry = _write(1)[0]
    assert "append-only" in _refused("UPDATE rems_compliancelogentry SET outcome = 'x' WHERE seq = %s", [entry.pk])
    assert "append-only" in _refused("DELETE FROM rems_compliancelogentry WHERE seq = %s", [entry.pk])
    _sql("SET LOCAL rems.allow_log_truncate = off")
    assert "append-only" in _refused("TRUNCATE rems_compliancelogentry CASCADE")


def test_the_database_sets_the_hashes_whatever_the_writer_gives():
    entry = ComplianceLogEntry.objects.create(
        occurred_at=timezone.now(), action="test.event", outcome="recorded", object_type="t", object_id="1",
        chain=9, chain_index=999, content_hash="forged", entry_hash="forged",
    )
    stored = ComplianceLogEntry.objects.get(pk=entry.pk)
    assert stored.content_hash != "forged" and len(stored.content_hash) == 64
    assert stored.chain_index != 999
    assert log_verify().ok


def test_a_transaction_appends_to_one_chain_and_transactions_spread_over_chains():
    entries = _write(3)
    stored = ComplianceLogEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("seq")
    assert len({e.chain for e in stored}) == 1
    assert [e.chain_index for e in stored] == list(range(stored[0].chain_index, stored[0].chain_index + 3))


def test_an_intact_log_verifies(world):
    _write(20)
    result = log_verify()
    assert result.ok and result.first_break is None
    assert result.entries_checked == ComplianceLogEntry.objects.count()


def _tamper(statements):
    """What someone with the owner's rights could do: switch the triggers off, change rows, switch them on."""
    _sql("SET CONSTRAINTS ALL IMMEDIATE")  # as at commit: the chain heads of the entries above are written
    _sql("ALTER TABLE rems_compliancelogentry DISABLE TRIGGER USER")
    for statement, params in statements:
        _sql(statement, params)
    _sql("ALTER TABLE rems_compliancelogentry ENABLE TRIGGER USER")


def test_an_edited_and_a_deleted_entry_break_the_chain_at_the_first_change(world):
    entries = _write(30)
    edited, deleted = entries[10], entries[20]

    _tamper([
        ("UPDATE rems_compliancelogentry SET outcome = 'approved' WHERE seq = %s", [edited.pk]),
        ("DELETE FROM rems_compliancelogentry WHERE seq = %s", [deleted.pk]),
    ])

    result = log_verify()
    assert not result.ok
    assert result.first_break.seq == edited.pk
    assert result.first_break.id == str(edited.id)
    assert "content changed" in result.first_break.reason


def test_a_deleted_entry_alone_is_found_at_the_gap(world):
    entries = _write(10)
    stored = {e.seq: e for e in ComplianceLogEntry.objects.filter(pk__in=[e.pk for e in entries])}
    _tamper([("DELETE FROM rems_compliancelogentry WHERE seq = %s", [entries[4].pk])])

    result = log_verify()

    assert not result.ok
    assert result.first_break.seq == entries[5].pk
    assert result.first_break.chain_index == stored[entries[4].pk].chain_index + 1
    assert "missing" in result.first_break.reason


def test_a_rehashed_edit_still_breaks_the_next_link(world):
    entries = _write(5)
    _tamper([(
        "UPDATE rems_compliancelogentry SET outcome = 'approved' WHERE seq = %s;"
        "UPDATE rems_compliancelogentry e SET content_hash = rems_log_content(e) WHERE seq = %s;"
        "UPDATE rems_compliancelogentry e SET entry_hash = rems_log_link("
        "  (SELECT p.entry_hash FROM rems_compliancelogentry p WHERE p.chain = e.chain"
        "   AND p.chain_index = e.chain_index - 1), e.content_hash) WHERE seq = %s",
        [entries[2].pk] * 3,
    )])

    result = log_verify()

    assert not result.ok and result.first_break.seq == entries[3].pk
    assert "link" in result.first_break.reason


def test_entries_removed_from_the_end_are_found_by_the_head(world):
    entries = _write(4)
    _tamper([("DELETE FROM rems_compliancelogentry WHERE seq = %s", [entries[-1].pk])])

    result = log_verify()

    assert not result.ok and "end of the chain" in result.first_break.reason


def test_a_time_range_is_verified_on_its_own(world):
    before = _write(5)
    middle_from = timezone.now() + timedelta(seconds=1)
    for i in range(4):
        log_entry_write(actor=None, action=Action.PATIENT_SURVEY_RECORD, outcome="recorded", object_type="test", object_id=i,
                        now=middle_from + timedelta(seconds=i))
    _tamper([("UPDATE rems_compliancelogentry SET outcome = 'x' WHERE seq = %s", [before[1].pk])])

    later = log_verify(since=middle_from)
    assert later.ok and later.entries_checked == 4
    earlier = log_verify(until=middle_from)
    assert not earlier.ok and earlier.first_break.seq == before[1].pk


def test_the_verify_command_reports_and_exits_non_zero_when_broken(capsys):
    entries = _write(3)
    call_command("verify_log")
    assert "ok:" in capsys.readouterr().out
    _tamper([("UPDATE rems_compliancelogentry SET detail = '{}' WHERE seq = %s", [entries[1].pk])])
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_log")
    assert exit_.value.code == 1
    assert f"seq {entries[1].pk}" in capsys.readouterr().out


def test_chain_heads_follow_the_entries(world):
    _write(3)
    _sql("SET CONSTRAINTS ALL IMMEDIATE")  # the heads are written at commit
    for head in LogChainHead.objects.all():
        last = ComplianceLogEntry.objects.get(chain=head.chain, chain_index=head.last_index)
        assert last.entry_hash == head.last_hash


def test_the_application_role_can_verify_the_whole_log(world, as_app_role):
    _write(3)
    result = log_verify()
    assert result.ok and result.entries_checked == ComplianceLogEntry.objects.count()


def test_the_database_stamps_its_own_time_and_the_hash_covers_the_order(world):
    entries = _write(3)
    stored = ComplianceLogEntry.objects.get(pk=entries[1].pk)
    assert stored.recorded_at is not None and stored.hash_version == 2
    assert abs((stored.recorded_at - timezone.now()).total_seconds()) < 60


@pytest.mark.parametrize("change", [
    "UPDATE rems_compliancelogentry SET seq = seq + 1000000 WHERE seq = %s",  # reordered
    "UPDATE rems_compliancelogentry SET occurred_at = occurred_at - interval '30 days' WHERE seq = %s",  # backdated
    "UPDATE rems_compliancelogentry SET recorded_at = recorded_at - interval '1 second' WHERE seq = %s",
])
def test_reordering_or_backdating_an_entry_breaks_the_chain(world, change):
    entries = _write(4)
    _tamper([(change, [entries[2].pk])])

    result = log_verify()

    assert not result.ok and "content changed" in result.first_break.reason


def test_each_insert_statement_moves_the_head_once_to_its_last_entry(world):
    _write(2)
    rows = [ComplianceLogEntry(occurred_at=timezone.now(), action="test.event", outcome="recorded", object_type="t",
                               object_id=str(i)) for i in range(5)]
    ComplianceLogEntry.objects.bulk_create(rows)  # one statement

    last = ComplianceLogEntry.objects.order_by("-chain_index").filter(
        chain=ComplianceLogEntry.objects.get(object_id="4", object_type="t").chain).first()
    head = LogChainHead.objects.get(chain=last.chain)
    assert head.last_index == last.chain_index and head.last_hash == last.entry_hash
    assert log_verify().ok
