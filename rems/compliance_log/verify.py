"""Verifying the compliance log: every entry's content against its hash, its link to the entry before it in its
chain, the time it gives against the time the database recorded it, each chain's end against its head, and (for
the whole log) every entry the newest signed checkpoint vouches for. The SQL that sets the hashes is in
`rems.compliance_log.sql`; the checkpoints are in `rems.compliance_log.checkpoints`."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from . import checkpoints
from .sql import GENESIS

# Checkpoints are written every minute: a newest checkpoint older than this means the beat was not running, or
# that newer checkpoints were removed (which would hide a rewind to before them).
MAX_CHECKPOINT_AGE = timedelta(minutes=3)

# An entry gives the time of the decision it records; the database stamps the time it was written. A request or a
# sweep writes within seconds of its start: an entry further than this from its stamp was written with a time
# that is not its own (back-dated, or post-dated).
MAX_CLOCK_GAP = timedelta(minutes=5)


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    id: str
    occurred_at: str
    chain: int
    chain_index: int
    reason: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries_checked: int
    chains: int
    first_break: ChainBreak | None
    since: str | None = None
    until: str | None = None
    # The whole log only: the newest signed checkpoint it was compared with, what contradicts it, and the
    # checkpoint this verification wrote.
    checkpoint: str | None = None
    contradictions: tuple = ()
    checkpoint_written: str | None = None
    checkpoint_error: str | None = None
    checkpoint_stale: str | None = None
    # Entries whose time is more than MAX_CLOCK_GAP from the time the database wrote them.
    flagged: int = 0
    first_flagged: ChainBreak | None = None


def _entry(seq, entry_id, occurred_at, chain, chain_index, reason):
    if seq is None:
        return None
    return ChainBreak(seq, str(entry_id), occurred_at.isoformat(), chain, chain_index, reason)


_VERIFY_SQL = """
WITH checked AS (
  SELECT e.seq, e.id, e.occurred_at, e.chain, e.chain_index,
         CASE
           WHEN rems_log_content(e) <> e.content_hash THEN 'content changed since it was written'
           WHEN e.chain_index > 1 AND p.seq IS NULL THEN 'the entry before it in its chain is missing'
           WHEN e.entry_hash <> rems_log_link(COALESCE(p.entry_hash, %(genesis)s), e.content_hash)
             THEN 'link to the entry before it is broken'
         END AS reason,
         CASE
           WHEN e.recorded_at IS NOT NULL
                AND abs(extract(epoch FROM e.recorded_at - e.occurred_at)) > %(max_gap)s
             THEN CASE WHEN e.recorded_at > e.occurred_at
                    THEN 'written ' || justify_interval(date_trunc('second', e.recorded_at - e.occurred_at))
                         || ' after the time it gives (back-dated)'
                    ELSE 'written ' || justify_interval(date_trunc('second', e.occurred_at - e.recorded_at))
                         || ' before the time it gives (post-dated)'
                  END
         END AS flag
    FROM rems_compliancelogentry e
    LEFT JOIN rems_compliancelogentry p ON p.chain = e.chain AND p.chain_index = e.chain_index - 1
   WHERE (%(since)s::timestamptz IS NULL OR e.occurred_at >= %(since)s)
     AND (%(until)s::timestamptz IS NULL OR e.occurred_at < %(until)s)
)
SELECT (SELECT count(*) FROM checked),
       (SELECT count(DISTINCT chain) FROM checked),
       b.seq, b.id, b.occurred_at, b.chain, b.chain_index, b.reason,
       (SELECT count(*) FROM checked WHERE flag IS NOT NULL),
       f.seq, f.id, f.occurred_at, f.chain, f.chain_index, f.flag
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (SELECT * FROM checked WHERE reason IS NOT NULL ORDER BY seq LIMIT 1) b ON true
  LEFT JOIN LATERAL (SELECT * FROM checked WHERE flag IS NOT NULL ORDER BY seq LIMIT 1) f ON true
"""

# Entries removed from the end of a chain leave no gap behind them: compare each chain with its head.
_TAIL_SQL = """
SELECT h.chain, h.last_index, e.seq, e.id, e.occurred_at
  FROM rems_log_heads() h
  LEFT JOIN rems_compliancelogentry e ON e.chain = h.chain AND e.chain_index = h.last_index
 WHERE h.last_index > 0 AND (e.seq IS NULL OR e.entry_hash <> h.last_hash)
 ORDER BY h.chain
"""


def log_verify(*, since=None, until=None):
    """Check every entry (or those between `since` and `until`): its content against its hash, its link to the
    entry before it in its chain, and each chain's end against its head; for the whole log, every entry the
    newest checkpoint vouches for, then write the next checkpoint. Reports the first broken entry and the first
    entry whose time is far from the time it was written."""
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL, {"since": since, "until": until, "genesis": GENESIS,
                                     "max_gap": MAX_CLOCK_GAP.total_seconds()})
        row = cursor.fetchone()
        total, chains = row[0:2]
        first = _entry(*row[2:8])
        flagged, first_flagged = row[8], _entry(*row[9:15])
        if until is None:
            cursor.execute(_TAIL_SQL)
            for head_chain, last_index, tail_seq, tail_id, tail_at in cursor.fetchall():
                if first is None:
                    first = ChainBreak(
                        tail_seq or 0, str(tail_id or ""), tail_at.isoformat() if tail_at else "", head_chain,
                        last_index, "entries at the end of the chain are missing or changed",
                    )
                    break
    anchored = _against_checkpoints() if since is None and until is None else {}
    return Verification(
        # Flagged entries do not make the log fail: they are intact, where they were written, with the time they
        # were given. Each one is for someone to look at.
        ok=first is None and not anchored.get("contradictions") and not anchored.get("checkpoint_error"),
        flagged=flagged, first_flagged=first_flagged,
        entries_checked=total, chains=chains, first_break=first,
        since=since.isoformat() if since else None, until=until.isoformat() if until else None, **anchored,
    )


def _against_checkpoints():
    """Compare the log with the newest checkpoint, and write the next one. Fails closed: a store that cannot be
    read or written, or checkpoints none of which verifies, makes the verification fail."""
    now = timezone.now()
    written = None
    try:
        previous = checkpoints.newest_checkpoint()
        key = checkpoints.signing_key(required=False)
        if key is not None:
            written, broken = checkpoints.checkpoint_write_after(previous, key=key, now=now)
        else:  # a process without the key (the API's, in production) compares only
            broken = checkpoints.contradictions(previous) if previous else []
    except checkpoints.CheckpointsUnreadable as exc:
        return {"checkpoint_error": f"no checkpoint verifies: {exc}"}
    except Exception as exc:  # noqa: BLE001 - a store that fails is reported, never ignored
        return {"checkpoint_error": f"the checkpoint store failed: {type(exc).__name__}: {exc}"}
    stale = None
    if previous is not None:
        age = now - datetime.fromisoformat(previous.taken_at)
        if age > MAX_CHECKPOINT_AGE:
            minutes = int(age.total_seconds() // 60)
            stale = (f"the newest checkpoint before this verification, {previous.id}, was {minutes} minutes old: "
                     "they are written every minute, so either beat was not running or newer checkpoints were "
                     "removed")
    return {"checkpoint": previous.id if previous else None, "contradictions": tuple(c.describe() for c in broken),
            "checkpoint_written": written.id if written else None, "checkpoint_stale": stale}
