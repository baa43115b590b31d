"""Checkpoints of the compliance log, and the verification of an export against them, without a database.

A checkpoint records, for every hash chain of the log, its newest entry (index and hash) at a moment, and is
signed with an Ed25519 key that PostgreSQL never holds. Whoever controls the database can rewrite the log and its
chain heads so that the chains verify again, but cannot sign a checkpoint: the entries a checkpoint names must
still be in the log, with the same hashes.

This module imports no Django and touches no database, so that an auditor can run it on an export alone:

    python -m rems.compliance_log.anchors --checkpoints DIR --public-key KEY.pem export.jsonl

It recomputes every entry's content hash from its fields (as `rems_log_content` does in PostgreSQL: the text form
of a jsonb array), follows each chain's links, and checks that every entry named by the newest checkpoint is in
the export with the same hash.
"""

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "rems-log-checkpoint/1"
GENESIS = "0" * 64


# --- Keys -----------------------------------------------------------------------------------------------
def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_load(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def private_key_create(path: Path) -> Ed25519PrivateKey:
    """A new key, written to `path` readable by its owner only. Never overwrites a key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as out:  # "x": fails if a key is already there
        path.chmod(0o600)
        out.write(pem)
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_keys_load(paths) -> dict[str, Ed25519PublicKey]:
    """Trusted public keys by key id, from PEM files."""
    keys = {}
    for path in paths:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


# --- Checkpoints ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Anchor:
    """The newest entry of one chain that a checkpoint vouches for. Indexes run from 1 without gaps, so `index`
    is also how many entries the chain held. `observed_in` names the checkpoint that first saw this entry as
    the chain's newest: a chain found rewound keeps its last good anchor in every later checkpoint."""

    chain: int
    index: int
    hash: str
    observed_at: str
    observed_in: str

    @property
    def entries(self):
        return self.index


@dataclass(frozen=True)
class Checkpoint:
    id: str
    taken_at: str
    anchors: tuple
    contradicted: tuple  # chains found without the entry the previous checkpoint named
    previous: str | None
    key_id: str
    signature: str = ""

    def body(self):
        return {
            "format": FORMAT, "id": self.id, "taken_at": self.taken_at, "previous": self.previous,
            "key_id": self.key_id, "contradicted": list(self.contradicted),
            "chains": [{"chain": a.chain, "index": a.index, "hash": a.hash, "entries": a.entries,
                        "observed_at": a.observed_at, "observed_in": a.observed_in} for a in self.anchors],
        }

    def to_bytes(self):
        return json.dumps({**self.body(), "signature": self.signature}, indent=1, sort_keys=True).encode()

    @property
    def anchor_by_chain(self):
        return {a.chain: a for a in self.anchors}


def _signed_bytes(body):
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_id(taken_at: datetime) -> str:
    """Checkpoint ids sort by time: `20261130T073500.123456Z`."""
    return taken_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def checkpoint_sign(private_key: Ed25519PrivateKey, *, taken_at: datetime, anchors, contradicted=(), previous=None):
    unsigned = Checkpoint(
        id=checkpoint_id(taken_at), taken_at=taken_at.astimezone(timezone.utc).isoformat(),
        anchors=tuple(sorted(anchors, key=lambda a: a.chain)), contradicted=tuple(sorted(contradicted)),
        previous=previous, key_id=key_id(private_key.public_key()),
    )
    signature = base64.b64encode(private_key.sign(_signed_bytes(unsigned.body()))).decode()
    return Checkpoint(**{**unsigned.__dict__, "signature": signature})


class CheckpointInvalid(Exception):
    pass


def checkpoint_parse(data: bytes, trusted: dict[str, Ed25519PublicKey]) -> Checkpoint:
    """A checkpoint from its stored bytes, its signature checked against the trusted keys. Raises
    CheckpointInvalid for anything else: unreadable, unknown key, bad signature."""
    try:
        document = json.loads(data)
        signature = base64.b64decode(document.pop("signature"), validate=True)
        if document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        key = trusted.get(document["key_id"])
        if key is None:
            raise CheckpointInvalid(f"checkpoint {document.get('id')} is signed with key {document['key_id']}, "
                                    "which is not trusted")
        key.verify(signature, _signed_bytes(document))
        anchors = tuple(Anchor(chain=int(c["chain"]), index=int(c["index"]), hash=str(c["hash"]),
                               observed_at=str(c["observed_at"]), observed_in=str(c["observed_in"]))
                        for c in document["chains"])
        return Checkpoint(id=document["id"], taken_at=document["taken_at"], anchors=anchors,
                          contradicted=tuple(document["contradicted"]), previous=document["previous"],
                          key_id=document["key_id"], signature=base64.b64encode(signature).decode())
    except CheckpointInvalid:
        raise
    except InvalidSignature:
        raise CheckpointInvalid("a checkpoint's signature does not match its content") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointInvalid(f"a checkpoint cannot be read: {exc}") from None


@dataclass(frozen=True)
class Contradiction:
    """An entry a checkpoint vouched for that the log no longer holds as it was."""

    chain: int
    index: int
    hash: str
    checkpoint: str
    observed_in: str
    found: str  # "missing" or the hash found instead

    def describe(self):
        what = ("is missing (the chain was wiped or rewound)" if self.found == "missing"
                else f"has hash {self.found[:16]}…, not {self.hash[:16]}… (the chain was rewritten)")
        return (f"chain {self.chain}: entry {self.index} {what}; checkpoint {self.checkpoint} vouches for it "
                f"(first seen in checkpoint {self.observed_in})")


def contradictions(checkpoint: Checkpoint, found: dict[tuple[int, int], str]):
    """What the log (`found`: (chain, index) -> entry hash, for the checkpoint's anchors) contradicts."""
    result = []
    for anchor in checkpoint.anchors:
        actual = found.get((anchor.chain, anchor.index))
        if actual != anchor.hash:
            result.append(Contradiction(anchor.chain, anchor.index, anchor.hash, checkpoint.id, anchor.observed_in,
                                        "missing" if actual is None else actual))
    return result


# --- Content hashes, as PostgreSQL computes them --------------------------------------------------------
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_string(text):
    """A string as PostgreSQL's jsonb writes it: these escapes, other control characters as \\u00XX, the rest as
    it is (UTF-8)."""
    return '"' + "".join(_ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 else ch) for ch in text) + '"'


def jsonb_text(value):
    """The text PostgreSQL gives a jsonb value: `, ` and `: ` separators, object keys ordered by length and then
    by their bytes, numbers as written (parse them with `json_load`, which keeps them as Decimal)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # as numeric_out writes it: never an exponent
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_json_string(k)}: {jsonb_text(value[k])}" for k in keys) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def json_load(text):
    return json.loads(text, parse_float=Decimal)


def _micros(moment):
    if moment is None:
        return None
    when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    delta = when - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_CONTENT_FIELDS = (
    "id", "occurred_at", "action", "outcome", "actor_user_id", "actor_username", "actor_role",
    "actor_prescriber_id", "actor_pharmacy_id", "program", "object_type", "object_id", "patient_id",
    "prescriber_id", "pharmacy_id", "prescription_id", "rule_set", "checks", "facts", "detail", "request_id",
)


def content_hash(entry):
    """`rems_log_content(e)` for an exported entry (a dict as in the JSON Lines export)."""
    values = [_micros(entry[f]) if f == "occurred_at" else entry[f] for f in _CONTENT_FIELDS]
    if entry.get("hash_version", 2) != 1:
        values += [entry["seq"], _micros(entry["recorded_at"])]
    return hashlib.sha256(jsonb_text(values).encode()).hexdigest()


def link(previous, content):
    return hashlib.sha256((previous + content).encode()).hexdigest()


# --- Verifying an export --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportVerification:
    ok: bool
    entries: int
    problems: tuple
    checkpoint: str | None


def export_verify(lines, checkpoints: list[Checkpoint]):
    """Verify a JSON Lines export of the whole log: every entry's content against its hash and its link to the
    entry before it in its chain; then the newest checkpoint's entries must all be there, unchanged."""
    problems, rows = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json_load(line)
            content = content_hash(entry)
            rows.append((int(entry["chain"]), int(entry["chain_index"]), content, str(entry["entry_hash"]),
                         entry["seq"]))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"line {number}: not an entry of the log ({exc})")
            continue
        if content != entry.get("content_hash", content):
            problems.append(f"seq {entry['seq']}: content changed since it was written")
    rows.sort()
    found, last = {}, {}
    for chain, index, content, entry_hash, seq in rows:
        previous_index, previous_hash = last.get(chain, (0, GENESIS))
        if index != previous_index + 1:
            problems.append(f"seq {seq}: chain {chain} goes from entry {previous_index} to {index}")
        elif link(previous_hash, content) != entry_hash:
            problems.append(f"seq {seq}: the link to the entry before it in chain {chain} is broken")
        last[chain] = (index, entry_hash)
        found[(chain, index)] = entry_hash
    newest = max(checkpoints, key=lambda c: c.id) if checkpoints else None
    if newest is None:
        problems.append("no valid checkpoint to compare the export with")
    else:
        problems += [c.describe() for c in contradictions(newest, found)]
    return ExportVerification(ok=not problems, entries=len(rows), problems=tuple(problems),
                              checkpoint=newest.id if newest else None)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m rems.compliance_log.anchors",
        description="Verify a JSON Lines export of the whole compliance log against its signed checkpoints, "
                    "without the database. Exits 1 when anything does not verify.")
    parser.add_argument("export", type=Path, help="the export (GET /api/v1/audit-events/export.jsonl)")
    parser.add_argument("--checkpoints", type=Path, required=True, help="the folder of checkpoint files")
    parser.add_argument("--public-key", type=Path, action="append", required=True,
                        help="a trusted public key (PEM); repeat for keys used before a rotation")
    args = parser.parse_args(argv)
    trusted = public_keys_load(args.public_key)
    valid, rejected = [], []
    for path in sorted(args.checkpoints.rglob("*.json")):
        try:
            valid.append(checkpoint_parse(path.read_bytes(), trusted))
        except CheckpointInvalid as exc:
            rejected.append(f"{path.name}: {exc}")
    with open(args.export, encoding="utf-8") as lines:
        result = export_verify(lines, valid)
    problems = list(result.problems) + [f"checkpoint rejected: {r}" for r in rejected]
    if problems:
        print(f"NOT VERIFIED: {result.entries} entries; newest valid checkpoint {result.checkpoint}")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print(f"ok: {result.entries} entries verified; every entry of checkpoint {result.checkpoint} is in the export")
    return 0


if __name__ == "__main__":
    sys.exit(main())
