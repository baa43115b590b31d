"""The compliance log's tables: one row per decision or change of state, and the head of each hash chain.

They belong to the `rems` app (its label and its migrations) but live here, with the code that writes and
verifies them, so that every app can write the log without depending on the program's own models.
"""

import uuid

from django.contrib.postgres.indexes import GinIndex
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class ComplianceLogEntry(models.Model):
    """One decision or change of state, written in the same transaction as the change it records.

    Append-only: database triggers refuse UPDATE, DELETE and TRUNCATE, and the application's database role may
    only read and insert (migration 0002). Tamper-evident: entries form hash chains (see `rems.compliance_log.sql`); each
    entry carries the hash of its content and the hash of its chain up to and including itself.
    Patients appear by their program id only; no names or birth dates.
    """

    seq = models.BigAutoField(primary_key=True)
    id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    occurred_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=60)
    outcome = models.CharField(max_length=20)
    actor_user_id = models.BigIntegerField(null=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    actor_prescriber_id = models.UUIDField(null=True, blank=True, help_text="The prescriber the actor acted for.")
    actor_pharmacy_id = models.UUIDField(null=True, blank=True, help_text="The pharmacy the actor acted for.")
    program = models.CharField(max_length=40, blank=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    patient_id = models.UUIDField(null=True, db_index=True)
    prescriber_id = models.UUIDField(null=True, db_index=True)
    pharmacy_id = models.UUIDField(null=True, db_index=True)
    prescription_id = models.UUIDField(null=True, db_index=True)
    rule_set = models.CharField(max_length=60, blank=True)
    checks = models.JSONField(default=list, encoder=DjangoJSONEncoder)
    facts = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    detail = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    request_id = models.CharField(max_length=64, blank=True)
    # Set by the database on insert (trigger `rems_log_append`), whatever the inserter gives: the server's own
    # clock, the version of the content hash, and the entry's place in its hash chain.
    recorded_at = models.DateTimeField(null=True, editable=False)
    hash_version = models.PositiveSmallIntegerField(default=1, editable=False)
    chain = models.PositiveSmallIntegerField(default=0, editable=False)
    chain_index = models.BigIntegerField(default=0, editable=False)
    content_hash = models.CharField(max_length=64, default="", editable=False)
    entry_hash = models.CharField(max_length=64, default="", editable=False)

    class Meta:
        app_label = "rems"
        verbose_name_plural = "compliance log entries"
        indexes = [
            models.Index(fields=["action", "occurred_at"]),
            GinIndex(fields=["checks"], opclasses=["jsonb_path_ops"], name="log_checks_gin"),
        ]
        constraints = [models.UniqueConstraint(fields=["chain", "chain_index"], name="log_chain_index_unique")]


class LogChainHead(models.Model):
    """The latest link of each hash chain of the compliance log. Appending updates the head row of one chain,
    so only appends to the same chain wait for each other."""

    chain = models.PositiveSmallIntegerField(primary_key=True)
    last_index = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    class Meta:
        app_label = "rems"
