"""Writing and reading the compliance log's checkpoints (see `rems.compliance_log.anchors`).

Every minute (Celery beat) and at every verification, the service reads the newest entry of each chain, checks
that the log still holds every entry the previous checkpoint vouched for, and writes a new checkpoint, signed
with a key held outside PostgreSQL, to a store outside PostgreSQL:
- a folder (`LOG_CHECKPOINT_DIR`; by default `.local/checkpoints` for `make run`, a volume in compose), or
- an S3-compatible bucket (`LOG_CHECKPOINT_S3_BUCKET`, with `LOG_CHECKPOINT_S3_ENDPOINT` and the usual AWS
  credentials in the environment).

A chain found without an entry the previous checkpoint vouched for keeps that last good anchor, in this checkpoint
and every later one, and is listed as contradicted: anchors never move backwards, so verification keeps failing
until someone looks.
"""

import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from . import anchors

logger = logging.getLogger(__name__)

# How many days back the newest checkpoints are looked for, a day at a time, before the whole store is listed.
SCAN_DAYS = 31


# --- Stores ---------------------------------------------------------------------------------------------
class DirectoryStore:
    """Checkpoints as files `YYYY/MM/DD/<id>.json` under a folder."""

    def __init__(self, root):
        self.root = Path(root)

    def put(self, checkpoint):
        day = self.root / checkpoint.id[0:4] / checkpoint.id[4:6] / checkpoint.id[6:8]
        day.mkdir(parents=True, exist_ok=True)
        path = day / f"{checkpoint.id}.json"
        partial = path.with_suffix(".partial")
        partial.write_bytes(checkpoint.to_bytes())
        partial.replace(path)  # never a half-written checkpoint

    def newest(self, count):
        """The bytes of up to `count` newest checkpoints, newest first."""
        found = []
        for day in sorted(self.root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]"), reverse=True):
            for path in sorted(day.glob("*.json"), reverse=True):
                found.append(path.read_bytes())
                if len(found) == count:
                    return found
        return found


class S3Store:
    """Checkpoints as objects `<prefix>YYYY/MM/DD/<id>.json` in an S3-compatible bucket. Enable object lock
    (compliance mode) or versioning on the bucket so that the service's own credentials cannot delete them."""

    def __init__(self, bucket, *, prefix="", endpoint_url=None):
        import boto3  # only where a bucket is configured
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        # Bounded waits: a store that does not answer fails the checkpoint (and a verification) within seconds.
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, config=Config(
            connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}))

    def _key(self, checkpoint_id):
        return f"{self.prefix}{checkpoint_id[0:4]}/{checkpoint_id[4:6]}/{checkpoint_id[6:8]}/{checkpoint_id}.json"

    def put(self, checkpoint):
        self.client.put_object(Bucket=self.bucket, Key=self._key(checkpoint.id), Body=checkpoint.to_bytes(),
                               ContentType="application/json")

    def _keys(self, prefix):
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(".json")]
        return sorted(keys, reverse=True)

    def newest(self, count):
        # Day by day from today, so that a minute's checkpoint lists one day's objects, not the whole bucket.
        keys, day = [], timezone.now().date()
        for _ in range(SCAN_DAYS):
            keys += self._keys(f"{self.prefix}{day:%Y/%m/%d}/")
            if len(keys) >= count:
                break
            day -= timedelta(days=1)
        else:
            keys = self._keys(self.prefix)
        return [self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read() for key in keys[:count]]


def store():
    if settings.LOG_CHECKPOINT_S3_BUCKET:
        return S3Store(settings.LOG_CHECKPOINT_S3_BUCKET, prefix=settings.LOG_CHECKPOINT_S3_PREFIX,
                       endpoint_url=settings.LOG_CHECKPOINT_S3_ENDPOINT)
    return DirectoryStore(settings.LOG_CHECKPOINT_DIR)


# --- Keys -----------------------------------------------------------------------------------------------
class SigningKeyMissing(Exception):
    """This process holds no signing key: it may compare the log with checkpoints, not write one."""


def signing_key(*, required=True):
    """The signing key from `LOG_CHECKPOINT_KEY_FILE`. Where the file does not exist, it is created on first use
    if `LOG_CHECKPOINT_CREATE_KEY` (outside production, by default); otherwise SigningKeyMissing, or None when not
    `required`. In production the key is given to the process that signs (beat) and to no other."""
    path = Path(settings.LOG_CHECKPOINT_KEY_FILE)
    if path.exists():
        return anchors.private_key_load(path)
    if not settings.LOG_CHECKPOINT_CREATE_KEY:
        if required:
            raise SigningKeyMissing(f"no checkpoint signing key at {path}")
        return None
    logger.warning("no checkpoint signing key at %s: creating one", path)
    try:
        return anchors.private_key_create(path)
    except FileExistsError:  # another process created it meanwhile
        return anchors.private_key_load(path)


def trusted_keys():
    """The public half of the signing key (where this process holds it), and every public key (PEM) in
    `LOG_CHECKPOINT_TRUSTED_KEYS_DIR`: the signer's, for processes that do not sign, and keys used before a
    rotation, whose checkpoints still count."""
    folder = Path(settings.LOG_CHECKPOINT_TRUSTED_KEYS_DIR)
    keys = anchors.public_keys_load(sorted(folder.glob("*.pem")) if folder.is_dir() else [])
    key = signing_key(required=False)
    if key is not None:
        public = key.public_key()
        keys[anchors.key_id(public)] = public
    return keys


def key_rotate():
    """Keep the current public key as trusted, then start signing with a new key. Returns the new key id."""
    path = Path(settings.LOG_CHECKPOINT_KEY_FILE)
    old = signing_key()
    trusted_dir = Path(settings.LOG_CHECKPOINT_TRUSTED_KEYS_DIR)
    trusted_dir.mkdir(parents=True, exist_ok=True)
    public = old.public_key()
    (trusted_dir / f"{anchors.key_id(public)}.pem").write_bytes(anchors.public_key_pem(public))
    retired = path.with_name(f"{path.name}.{anchors.key_id(public)}.retired")
    path.replace(retired)
    new = anchors.private_key_create(path)
    retired.unlink()
    return anchors.key_id(new.public_key())


# --- Reading and writing --------------------------------------------------------------------------------
class CheckpointsUnreadable(Exception):
    """Checkpoints exist, but none of them verifies: the store was tampered with, or the keys are wrong."""


def newest_checkpoint(*, scan=20):
    """The newest checkpoint whose signature verifies, or None if there is none yet. Raises
    CheckpointsUnreadable if there are checkpoints but none of the newest `scan` verifies."""
    documents = store().newest(scan)
    if not documents:
        return None
    keys = trusted_keys()
    problems = []
    for data in documents:
        try:
            return anchors.checkpoint_parse(data, keys)
        except anchors.CheckpointInvalid as exc:
            problems.append(str(exc))
            logger.error("compliance log checkpoint rejected: %s", exc)
    raise CheckpointsUnreadable("; ".join(problems))


_HEADS_SQL = """
SELECT h.chain, h.last_index, h.last_hash
  FROM rems_log_heads() h
  JOIN rems_compliancelogentry e ON e.chain = h.chain AND e.chain_index = h.last_index AND e.entry_hash = h.last_hash
 WHERE h.last_index > 0
"""


def _found(anchor_list):
    """(chain, index) -> the hash the log holds there, for the given anchors."""
    if not anchor_list:
        return {}
    values = ", ".join(["(%s, %s)"] * len(anchor_list))
    params = [p for a in anchor_list for p in (a.chain, a.index)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.chain, e.chain_index, e.entry_hash FROM (VALUES {values}) AS v(chain, idx) "
            "JOIN rems_compliancelogentry e ON e.chain = v.chain AND e.chain_index = v.idx", params)
        return {(chain, index): entry_hash for chain, index, entry_hash in cursor.fetchall()}


def contradictions(checkpoint):
    """The entries `checkpoint` vouches for that the log no longer holds as they were."""
    return anchors.contradictions(checkpoint, _found(checkpoint.anchors))


def checkpoint_write(*, now):
    """Write a checkpoint of every chain's newest entry; returns it with what contradicts the previous one."""
    return checkpoint_write_after(newest_checkpoint(), key=signing_key(), now=now)


def checkpoint_write_after(previous, *, key, now):
    """`checkpoint_write`, for a caller that has read the newest checkpoint (`previous`) and the signing key."""
    with connection.cursor() as cursor:
        cursor.execute(_HEADS_SQL)
        heads = {chain: (index, entry_hash) for chain, index, entry_hash in cursor.fetchall()}
    broken = contradictions(previous) if previous else []
    broken_chains = {c.chain for c in broken}
    kept = previous.anchor_by_chain if previous else {}
    new_id = anchors.checkpoint_id(now)
    result = []
    for chain in sorted(set(heads) | set(kept)):
        old = kept.get(chain)
        if chain in broken_chains or chain not in heads or (old and heads[chain][0] < old.index):
            result.append(old)  # never move an anchor backwards
        elif old and heads[chain] == (old.index, old.hash):
            result.append(old)
        else:
            index, entry_hash = heads[chain]
            result.append(anchors.Anchor(chain, index, entry_hash, now.isoformat(), new_id))
    checkpoint = anchors.checkpoint_sign(key, taken_at=now, anchors=result,
                                         contradicted=broken_chains | set(previous.contradicted if previous else ()),
                                         previous=previous.id if previous else None)
    store().put(checkpoint)
    for contradiction in broken:
        logger.error("compliance log contradicts its checkpoint: %s", contradiction.describe())
    return checkpoint, broken
