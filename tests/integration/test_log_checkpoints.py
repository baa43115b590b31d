"""The compliance log against its own administrator: signed checkpoints kept outside the database catch a log
that was wiped, rewound or rewritten with its chains recomputed; the application's role cannot steer the
chaining; back-dated entries are flagged; an export verifies against the checkpoints without the database."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from rems.compliance_log import anchors, checkpoints
from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry, LogChainHead
from rems.compliance_log.queries import export_stream
from rems.compliance_log.sql import APP_ROLE, guard_functions
from rems.compliance_log.verify import log_verify
from rems.compliance_log.writer import log_entry_write

pytestmark = pytest.mark.django_db


def _write(n, *, now=None, **kwargs):
    now = now or timezone.now()
    return [log_entry_write(actor=None, action=Action.PATIENT_SURVEY_RECORD, outcome="recorded", object_type="test",
                            object_id=i, now=now, detail={"i": i}, **kwargs) for i in range(n)]


def _sql(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def _as_owner_without_triggers(*statements):
    """What the database's owner (or a superuser) can always do: switch the triggers off and change anything."""
    _sql("ALTER TABLE rems_compliancelogentry DISABLE TRIGGER USER")
    _sql("ALTER TABLE rems_logchainhead DISABLE TRIGGER USER")
    for statement, params in statements:
        _sql(statement, params)
    _sql("ALTER TABLE rems_compliancelogentry ENABLE TRIGGER USER")
    _sql("ALTER TABLE rems_logchainhead ENABLE TRIGGER USER")


def _chain_of(entry):
    return ComplianceLogEntry.objects.get(pk=entry.pk).chain


def _checkpointed_log(n=6):
    entries = _write(n)
    checkpoint, broken = checkpoints.checkpoint_write(now=timezone.now())
    assert not broken and checkpoint.anchors
    return entries, checkpoint


# --- What the owner can do, and what the checkpoints say ------------------------------------------------
def test_an_intact_log_verifies_against_its_checkpoint_and_writes_the_next():
    _, checkpoint = _checkpointed_log()

    result = log_verify()

    assert result.ok and result.checkpoint == checkpoint.id and not result.contradictions
    assert result.checkpoint_written > checkpoint.id


def test_a_wiped_log_and_heads_contradict_the_checkpoint():
    _, checkpoint = _checkpointed_log()
    _as_owner_without_triggers(("DELETE FROM rems_compliancelogentry", None), ("DELETE FROM rems_logchainhead", None))

    result = log_verify()

    assert result.first_break is None and result.entries_checked == 0  # the chains alone look fine: empty
    assert not result.ok
    assert result.contradictions and all(checkpoint.id in c and "missing" in c for c in result.contradictions)


def test_a_rewound_chain_contradicts_the_checkpoint():
    entries, checkpoint = _checkpointed_log()
    newest = ComplianceLogEntry.objects.get(pk=entries[-1].pk)
    _as_owner_without_triggers(
        ("DELETE FROM rems_compliancelogentry WHERE seq = %s", [newest.pk]),
        ("UPDATE rems_logchainhead h SET last_index = e.chain_index, last_hash = e.entry_hash "
         "FROM rems_compliancelogentry e WHERE e.chain = h.chain AND e.chain_index = h.last_index - 1 "
         "AND h.chain = %s", [newest.chain]),
    )

    result = log_verify()

    assert result.first_break is None  # the chain and its head agree again
    assert not result.ok
    [contradiction] = result.contradictions
    assert f"chain {newest.chain}: entry {newest.chain_index} is missing" in contradiction
    assert checkpoint.id in contradiction


def test_a_changed_outcome_with_every_hash_recomputed_contradicts_the_checkpoint():
    entries, checkpoint = _checkpointed_log()
    target = ComplianceLogEntry.objects.get(pk=entries[2].pk)
    recompute = [
        ("UPDATE rems_compliancelogentry SET outcome = 'approved' WHERE seq = %s", [target.pk]),
        ("UPDATE rems_compliancelogentry e SET content_hash = rems_log_content(e) WHERE seq = %s", [target.pk]),
    ]
    later = ComplianceLogEntry.objects.filter(chain=target.chain, chain_index__gte=target.chain_index)
    for index in later.order_by("chain_index").values_list("chain_index", flat=True):
        recompute.append((
            "UPDATE rems_compliancelogentry e SET entry_hash = rems_log_link(COALESCE((SELECT p.entry_hash "
            "FROM rems_compliancelogentry p WHERE p.chain = e.chain AND p.chain_index = e.chain_index - 1), "
            "repeat('0', 64)), e.content_hash) WHERE chain = %s AND chain_index = %s", [target.chain, index]))
    recompute.append((
        "UPDATE rems_logchainhead h SET last_hash = e.entry_hash FROM rems_compliancelogentry e "
        "WHERE e.chain = h.chain AND e.chain_index = h.last_index AND h.chain = %s", [target.chain]))
    _as_owner_without_triggers(*recompute)

    result = log_verify()

    assert result.first_break is None  # every hash recomputed: the chain alone verifies
    assert not result.ok
    [contradiction] = result.contradictions
    assert "rewritten" in contradiction and checkpoint.id in contradiction


def test_later_checkpoints_never_launder_a_contradiction():
    entries, first = _checkpointed_log()
    _as_owner_without_triggers(("DELETE FROM rems_compliancelogentry", None), ("DELETE FROM rems_logchainhead", None))
    _write(3)  # the service goes on writing into the wiped log

    for _ in range(3):  # beat writes its checkpoints every minute
        checkpoints.checkpoint_write(now=timezone.now())
    result = log_verify()

    assert not result.ok and result.contradictions
    assert any(f"first seen in checkpoint {first.id}" in c for c in result.contradictions)
    assert checkpoints.newest_checkpoint().contradicted


def test_newest_checkpoints_removed_leave_a_stale_one_that_is_reported(checkpoint_store, capsys):
    _write(3)
    checkpoints.checkpoint_write(now=timezone.now() - timedelta(minutes=10))
    removed, _ = checkpoints.checkpoint_write(now=timezone.now() - timedelta(minutes=1))
    next(checkpoint_store.rglob(f"{removed.id}.json")).unlink()  # what would hide a rewind to before it

    with pytest.raises(SystemExit) as exit_:
        call_command("verify_log")

    assert exit_.value.code == 2  # intact, but to be looked at
    assert "STALE CHECKPOINTS" in capsys.readouterr().out
    result = log_verify()
    assert result.ok and result.checkpoint_stale is None  # the verification before wrote a fresh one


def test_a_stale_checkpoint_is_named_with_its_age():
    _write(2)
    old, _ = checkpoints.checkpoint_write(now=timezone.now() - timedelta(minutes=10))

    result = log_verify()

    assert result.ok and old.id in result.checkpoint_stale and "10 minutes old" in result.checkpoint_stale


def test_a_forged_or_altered_checkpoint_is_refused(checkpoint_store):
    _checkpointed_log()
    [path] = list(checkpoint_store.rglob("*.json"))
    document = json.loads(path.read_bytes())
    document["chains"] = []  # an empty log would match this one
    path.write_text(json.dumps(document))

    result = log_verify()

    assert not result.ok and "signature" in result.checkpoint_error


def test_checkpoints_signed_before_a_key_rotation_still_count():
    _, before = _checkpointed_log()
    call_command("log_checkpoint", "--rotate-key")
    assert checkpoints.newest_checkpoint().id == before.id  # the old key is trusted

    result = log_verify()

    assert result.ok and result.checkpoint == before.id
    assert checkpoints.newest_checkpoint().key_id != before.key_id


def test_a_process_without_the_key_compares_with_the_checkpoints_and_writes_none(settings, tmp_path,
                                                                                checkpoint_store):
    _, checkpoint = _checkpointed_log()  # signed where the key is (beat, in production)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "signer.pem").write_bytes(anchors.public_key_pem(checkpoints.signing_key().public_key()))
    # The API's process in production: no key, no key created, the signer's public key only.
    settings.LOG_CHECKPOINT_KEY_FILE = str(tmp_path / "absent" / "key.pem")
    settings.LOG_CHECKPOINT_CREATE_KEY = False
    settings.LOG_CHECKPOINT_TRUSTED_KEYS_DIR = str(trusted)
    files = sorted(checkpoint_store.rglob("*.json"))

    assert log_verify().ok
    _as_owner_without_triggers(("DELETE FROM rems_compliancelogentry", None), ("DELETE FROM rems_logchainhead", None))
    result = log_verify()

    assert not result.ok and result.checkpoint == checkpoint.id and result.checkpoint_written is None
    assert any(checkpoint.id in c for c in result.contradictions)
    assert sorted(checkpoint_store.rglob("*.json")) == files and not (tmp_path / "absent").exists()
    with pytest.raises(checkpoints.SigningKeyMissing):
        checkpoints.checkpoint_write(now=timezone.now())


# --- What the application's role can do -----------------------------------------------------------------
@pytest.fixture
def as_app_role():
    _sql(f"SET LOCAL ROLE {APP_ROLE}")
    yield
    _sql("RESET ROLE")


def test_a_session_setting_cannot_steer_the_chain(as_app_role):
    _write(2)
    txid = _sql("SELECT txid_current()")[0][0]
    for forged in (f"{txid}:999:{'f' * 64}", f"{txid}:1:{'0' * 64}", "garbage"):
        _sql("SELECT set_config('rems.log_head', %s, true)", [forged])
        _write(1)
    _sql("RESET ROLE")

    assert log_verify().ok
    for head in LogChainHead.objects.all():
        assert ComplianceLogEntry.objects.get(chain=head.chain, chain_index=head.last_index).entry_hash == \
            head.last_hash


def test_a_setting_changed_between_rows_of_one_statement_fails_that_statement_only(as_app_role):
    _write(2)
    with pytest.raises(DatabaseError), transaction.atomic():
        _sql("INSERT INTO rems_compliancelogentry (id, occurred_at, action, outcome, actor_username, actor_role, "
             "program, object_type, object_id, rule_set, checks, facts, detail, request_id) "
             "SELECT gen_random_uuid(), now(), 'test.event', 'recorded', 'system', 'system', '', 't', "
             "g::text || set_config('rems.log_head', txid_current()::text || ':' || (g * 100)::text || ':x', true), "
             "'', '[]', '{}', '{}', '' FROM generate_series(1, 3) g")
    _sql("RESET ROLE")
    assert log_verify().ok


def test_the_chain_heads_refuse_every_change_but_the_logs_own():
    _write(2)
    for statement in ("UPDATE rems_logchainhead SET last_index = 1", "DELETE FROM rems_logchainhead",
                      "INSERT INTO rems_logchainhead (chain, last_index, last_hash) VALUES (99, 0, 'x')"):
        with pytest.raises(DatabaseError, match="chain heads"), transaction.atomic():
            _sql(statement)


def test_outside_a_test_database_there_is_no_switch_to_empty_the_log():
    # The functions a production database gets (this test's transaction rolls them back).
    _sql(guard_functions(test_database=False))
    _sql("SET LOCAL rems.allow_log_truncate = on")
    for table in ("rems_compliancelogentry", "rems_logchainhead"):
        with pytest.raises(DatabaseError, match="not allowed"), transaction.atomic():
            _sql(f"TRUNCATE {table} CASCADE")


def test_the_application_role_cannot_log_in():
    assert _sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [APP_ROLE]) == [(False,)]


def test_a_back_dated_entry_is_flagged(as_app_role):
    _write(3)
    [backdated] = _write(1, now=timezone.now() - timedelta(days=30))
    _write(1, now=timezone.now() - timedelta(minutes=4))  # within the gap a slow request may take: not flagged
    _sql("RESET ROLE")

    result = log_verify()

    assert result.ok  # intact: the entry is where it was written
    assert result.flagged == 1 and result.first_flagged.id == str(backdated.id)
    assert "back-dated" in result.first_flagged.reason


def test_the_verify_command_reports_contradictions_and_flags(capsys):
    _checkpointed_log()
    _write(1, now=timezone.now() + timedelta(hours=2))
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_log")
    assert exit_.value.code == 2  # intact, but with an entry to look at
    out = capsys.readouterr().out
    assert "FLAGGED: 1 entry" in out and "post-dated" in out


# --- An export, verified without the database -----------------------------------------------------------
def _export(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(export_stream(ComplianceLogEntry.objects.all(), "jsonl")))
    return path


def _public_key(tmp_path):
    path = tmp_path / "public.pem"
    path.write_bytes(anchors.public_key_pem(checkpoints.signing_key().public_key()))
    return path


TRICKY_DETAIL = {
    "quote\"back\\slash": "tab\there\nnew line \u0001 control", "é": "naïve – ünïcode ✓", "a": [1, 2.50, -0.0001],
    "small": [Decimal("0.0000001"), Decimal("1.0E-7"), 1e-9, Decimal("1E+2"), 1.5e300, -0.0],
    "bb": {"z": None, "y": True, "x": False, "longer key": {"n": 12345678901234567890}}, "": "empty key",
}


def test_an_export_verifies_offline_against_the_checkpoints(tmp_path, checkpoint_store, capsys):
    log_entry_write(actor=None, action=Action.PATIENT_SURVEY_RECORD, outcome="recorded", object_type="test",
                    object_id="tricky", now=timezone.now(), detail=TRICKY_DETAIL, facts={"amount": Decimal("1.50")})
    _checkpointed_log()
    export, key = _export(tmp_path), _public_key(tmp_path)

    code = anchors.main([str(export), "--checkpoints", str(checkpoint_store), "--public-key", str(key)])

    assert code == 0, capsys.readouterr().out


def test_an_altered_or_truncated_export_does_not_verify_offline(tmp_path, checkpoint_store, capsys):
    entries, _ = _checkpointed_log()
    export, key = _export(tmp_path), _public_key(tmp_path)
    lines = export.read_text().splitlines()
    args = ["--checkpoints", str(checkpoint_store), "--public-key", str(key)]

    altered = tmp_path / "altered.jsonl"
    altered.write_text("\n".join(line.replace('"recorded"', '"approved"', 1) if i == 2 else line
                                 for i, line in enumerate(lines)))
    assert anchors.main([str(altered), *args]) == 1
    assert "content changed" in capsys.readouterr().out

    truncated = tmp_path / "truncated.jsonl"
    newest = ComplianceLogEntry.objects.get(pk=entries[-1].pk)
    truncated.write_text("\n".join(line for line in lines if json.loads(line)["seq"] != newest.pk))
    assert anchors.main([str(truncated), *args]) == 1
    assert "is missing" in capsys.readouterr().out


def test_the_database_and_the_offline_verifier_hash_the_same_text():
    entry = log_entry_write(actor=None, action=Action.PATIENT_SURVEY_RECORD, outcome="recorded", object_type="test",
                            object_id="tricky", now=timezone.now(), detail=TRICKY_DETAIL)
    [line] = list(export_stream(ComplianceLogEntry.objects.filter(pk=entry.pk), "jsonl"))
    exported = anchors.json_load(bytes(line).decode())
    stored = ComplianceLogEntry.objects.get(pk=entry.pk)
    assert anchors.content_hash(exported) == stored.content_hash
