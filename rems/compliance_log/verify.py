"""Verifying the compliance log's hash chains: every entry's content against its hash, its link to the entry
before it in its chain, and each chain's end against its head. Read-only; the SQL that sets the hashes is in
`rems.compliance_log.sql`."""

from dataclasses import dataclass

from django.db import connection

from .sql import GENESIS


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


_VERIFY_SQL = """
WITH checked AS (
  SELECT e.seq, e.id, e.occurred_at, e.chain, e.chain_index,
         CASE
           WHEN rems_log_content(e) <> e.content_hash THEN 'content changed since it was written'
           WHEN e.chain_index > 1 AND p.seq IS NULL THEN 'the entry before it in its chain is missing'
           WHEN e.entry_hash <> rems_log_link(COALESCE(p.entry_hash, %(genesis)s), e.content_hash)
             THEN 'link to the entry before it is broken'
         END AS reason
    FROM rems_compliancelogentry e
    LEFT JOIN rems_compliancelogentry p ON p.chain = e.chain AND p.chain_index = e.chain_index - 1
   WHERE (%(since)s::timestamptz IS NULL OR e.occurred_at >= %(since)s)
     AND (%(until)s::timestamptz IS NULL OR e.occurred_at < %(until)s)
)
SELECT (SELECT count(*) FROM checked),
       (SELECT count(DISTINCT chain) FROM checked),
       b.seq, b.id, b.occurred_at, b.chain, b.chain_index, b.reason
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (SELECT * FROM checked WHERE reason IS NOT NULL ORDER BY seq LIMIT 1) b ON true
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
    entry before it in its chain, and each chain's end against its head. Reports the first broken entry."""
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL, {"since": since, "until": until, "genesis": GENESIS})
        total, chains, seq, entry_id, occurred_at, chain, chain_index, reason = cursor.fetchone()
        first = None
        if seq is not None:
            first = ChainBreak(seq, str(entry_id), occurred_at.isoformat(), chain, chain_index, reason)
        if until is None:
            cursor.execute(_TAIL_SQL)
            for head_chain, last_index, tail_seq, tail_id, tail_at in cursor.fetchall():
                if first is None:
                    first = ChainBreak(
                        tail_seq or 0, str(tail_id or ""), tail_at.isoformat() if tail_at else "", head_chain,
                        last_index, "entries at the end of the chain are missing or changed",
                    )
                    break
    return Verification(
        ok=first is None, entries_checked=total, chains=chains, first_break=first,
        since=since.isoformat() if since else None, until=until.isoformat() if until else None,
    )
