"""Prescriptions with their authorization numbers, and pharmacy dispense authorizations (RDAs).

The invariants that matter most live in the database: at most one open prescription per patient, at most one
live RDA per prescription, at most one dispense per prescription.
"""

import uuid

from django.db import models
from django.db.models import Q


class PrescriptionStatus(models.TextChoices):
    ISSUED = "issued"  # authorization number issued, no RDA holds it
    AUTHORIZED = "authorized"  # a pharmacy holds an approved RDA for it
    DISPENSED = "dispensed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


OPEN_PRESCRIPTION_STATUSES = [PrescriptionStatus.ISSUED, PrescriptionStatus.AUTHORIZED]


class SystemReason:
    """The `status_reason` the service writes when it changes a status itself (the sweeps write the same)."""

    VALIDITY_ENDED = "validity ended"
    PRESCRIPTION_EXPIRED = "prescription authorization expired"
    NOT_DISPENSED_IN_TIME = "not dispensed in time"
    DISPENSE_REVERSED = "dispense reversed: a new authorization is needed"
    REVERSED_AFTER_VALIDITY = "dispense authorization reversed after the validity ended"


# Every index of a table is written by every change of status (no change of status is a HOT update: `status` is in
# the predicates of the partial indexes), so an index no query needs is a cost with nothing in return. The foreign
# keys below with db_index=False are read through another index that starts with the same column, or never filtered
# on alone; the rows they point to are never deleted (PROTECT, and no code or admin page deletes a patient,
# prescriber, program, product, pharmacy or user). The numbers are looked up by equality only, through their unique
# index: the varchar_pattern_ops index Django adds beside it for LIKE is dropped by migration 0006.


class Prescription(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    authorization_number = models.CharField(max_length=12, unique=True)
    # read through (patient, -issued_at) and the one-open-per-patient index
    patient = models.ForeignKey("rems.Patient", on_delete=models.PROTECT, related_name="prescriptions",
                                db_index=False)
    # read through (prescriber, -issued_at)
    prescriber = models.ForeignKey("rems.Prescriber", on_delete=models.PROTECT, related_name="prescriptions",
                                   db_index=False)
    program = models.ForeignKey("rems.Program", on_delete=models.PROTECT, related_name="+", db_index=False)
    product = models.ForeignKey("rems.Product", on_delete=models.PROTECT, related_name="+", db_index=False)
    quantity = models.PositiveIntegerField()
    days_supply = models.PositiveSmallIntegerField()
    risk_category = models.CharField(max_length=40)
    rule_set = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=PrescriptionStatus.choices)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    dispensed_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField()
    status_reason = models.CharField(max_length=500, blank=True)
    decision_id = models.UUIDField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PrescriptionStatus.values), name="prescription_status_valid"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0) & Q(days_supply__gt=0), name="prescription_positive"),
            models.CheckConstraint(
                condition=Q(dispensed_at__isnull=True) | Q(status=PrescriptionStatus.DISPENSED),
                name="prescription_dispensed_at_only_when_dispensed",
            ),
            # One open prescription authorization per patient and program.
            models.UniqueConstraint(
                fields=["patient", "program"],
                condition=Q(status__in=OPEN_PRESCRIPTION_STATUSES),
                name="prescription_one_open_per_patient",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "-issued_at"]),
            models.Index(fields=["prescriber", "-issued_at"]),
            # The expiry sweep and the lapse reminders walk the open authorizations in order of expiry; an expired
            # one leaves this index (so the walk never passes over what earlier batches expired), and one index
            # fewer to update makes each expiry cheaper.
            models.Index(fields=["expires_at"], condition=Q(status__in=OPEN_PRESCRIPTION_STATUSES),
                         name="prescription_open_expiry"),
        ]


class DispenseStatus(models.TextChoices):
    APPROVED = "approved"
    DISPENSED = "dispensed"
    REVERSED = "reversed"
    EXPIRED = "expired"


class DispenseAuthorization(models.Model):
    """An approved pharmacy dispense authorization (RDA). Denied requests leave only their log entry."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rda_number = models.CharField(max_length=12, unique=True)
    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="dispense_authorizations")
    # read through (pharmacy, -approved_at)
    pharmacy = models.ForeignKey("rems.Pharmacy", on_delete=models.PROTECT, related_name="dispense_authorizations",
                                 db_index=False)
    requested_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+", db_index=False)
    product = models.ForeignKey("rems.Product", on_delete=models.PROTECT, related_name="+", db_index=False)
    quantity = models.PositiveIntegerField()
    days_supply = models.PositiveSmallIntegerField()
    rule_set = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=DispenseStatus.choices)
    approved_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    dispensed_at = models.DateTimeField(null=True, blank=True)
    dispensed_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    counseling_confirmed = models.BooleanField(default=False)
    medication_guide_provided = models.BooleanField(default=False)
    status_changed_at = models.DateTimeField()
    status_reason = models.CharField(max_length=500, blank=True)
    decision_id = models.UUIDField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DispenseStatus.values), name="rda_status_valid"),
            # At most one live RDA, hence at most one dispense, per prescription authorization.
            models.UniqueConstraint(
                fields=["prescription"],
                condition=Q(status__in=[DispenseStatus.APPROVED, DispenseStatus.DISPENSED]),
                name="rda_one_live_per_prescription",
            ),
            # One dispense per prescription authorization, ever: a reversed dispense keeps its dispensed_at.
            models.UniqueConstraint(
                fields=["prescription"], condition=Q(dispensed_at__isnull=False), name="rda_one_dispense_per_prescription"
            ),
            models.CheckConstraint(
                condition=~Q(status=DispenseStatus.DISPENSED)
                | (Q(dispensed_at__isnull=False) & Q(counseling_confirmed=True) & Q(medication_guide_provided=True)),
                name="rda_dispensed_with_counseling",
            ),
        ]
        indexes = [
            models.Index(fields=["pharmacy", "-approved_at"]),
            models.Index(fields=["status", "expires_at"]),
        ]


class MatchLockKind(models.TextChoices):
    BIRTH_DATE = "birth_date", "Wrong dates of birth for one authorization number"
    AUTHORIZATION_NUMBER = "authorization_number", "Unknown authorization numbers"


class MatchLock(models.Model):
    """Failed matches from one pharmacy: wrong birth dates for one authorization number, or authorization numbers
    that do not exist. Past the configured number, the pharmacy's further attempts are refused, even when right,
    until a program administrator clears them."""

    pharmacy = models.ForeignKey("rems.Pharmacy", on_delete=models.PROTECT, related_name="match_locks")
    kind = models.CharField(max_length=24, choices=MatchLockKind.choices)
    authorization_number = models.CharField(max_length=12, blank=True)
    failures = models.PositiveIntegerField(default=0)
    first_failure_at = models.DateTimeField()
    last_failure_at = models.DateTimeField()
    locked_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pharmacy", "kind", "authorization_number"], condition=models.Q(cleared_at__isnull=True),
                name="match_lock_one_open",
            )
        ]
