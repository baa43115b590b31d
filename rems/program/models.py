"""The program and its parties: programs, rule sets, products, prescribers, pharmacies, certifications,
patients with their enrollment, pregnancy tests, attestations, surveys and pregnancy reports; the stored answers
to idempotent requests; notifications.

Models hold data and database constraints only. Every change of state goes through a service of this package
(`certifications`, `patients`, `records`, ...). The compliance log's tables belong to this app too (its label,
`rems`, and its migrations) but are defined with the log, in `rems.compliance_log.models`.
"""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

# Registered under this app's label: the log's tables are this app's, migrated with it.
from rems.compliance_log.models import ComplianceLogEntry, LogChainHead  # noqa: F401


class Program(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    # The active ingredient, and its RxNorm code: how an EHR names the medication of an order.
    ingredient = models.CharField(max_length=80, blank=True)
    rxnorm = models.CharField(max_length=20, blank=True, help_text="The RxNorm code of the ingredient.")

    def __str__(self):
        return self.name


class RuleSet(models.Model):
    """The parameters of a program, in force from `effective_at` until the next rule set of the program."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="rule_sets")
    version = models.CharField(max_length=40, help_text="Usually the date it takes effect, e.g. 2025-01-01.")
    effective_at = models.DateTimeField()
    parameters = models.JSONField()
    sources = models.JSONField(default=dict, blank=True, help_text="Where each parameter comes from.")
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "version"], name="ruleset_unique_version"),
            models.UniqueConstraint(fields=["program", "effective_at"], name="ruleset_unique_effective_at"),
        ]

    @property
    def label(self):
        return f"{self.program.slug}@{self.version}"

    def __str__(self):
        return self.label


class Product(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="products")
    ndc = models.CharField(max_length=13, unique=True, help_text="11-digit 5-4-2 form with hyphens.")
    name = models.CharField(max_length=120)
    strength_mg = models.DecimalField(max_digits=6, decimal_places=2)
    package_size = models.PositiveIntegerField()

    def __str__(self):
        return f"{self.name} ({self.ndc})"


class Prescriber(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    npi = models.CharField(max_length=10, unique=True)
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    email = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Prescriber {self.npi}"


class Pharmacy(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ncpdp_id = models.CharField(max_length=7, unique=True)
    npi = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=160)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "pharmacies"

    def __str__(self):
        return f"Pharmacy {self.ncpdp_id}"


class Status(models.TextChoices):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


LIVE_STATUSES = [Status.PENDING, Status.ACTIVE, Status.SUSPENDED]


class Certification(models.Model):
    """A prescriber's or a pharmacy's certification in one program. Only `active` passes a gate, and only
    before `expires_at`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    prescriber = models.ForeignKey(
        Prescriber, null=True, blank=True, on_delete=models.PROTECT, related_name="certifications"
    )
    pharmacy = models.ForeignKey(
        Pharmacy, null=True, blank=True, on_delete=models.PROTECT, related_name="certifications"
    )
    status = models.CharField(max_length=12, choices=Status.choices)
    certified_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status_changed_at = models.DateTimeField()
    status_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(prescriber__isnull=False, pharmacy__isnull=True)
                | Q(prescriber__isnull=True, pharmacy__isnull=False),
                name="certification_one_party",
            ),
            models.CheckConstraint(condition=Q(status__in=Status.values), name="certification_status_valid"),
            # One live certification per party and program; a new one only after expiry.
            models.UniqueConstraint(
                fields=["program", "prescriber"],
                condition=Q(status__in=LIVE_STATUSES, prescriber__isnull=False),
                name="certification_one_live_per_prescriber",
            ),
            models.UniqueConstraint(
                fields=["program", "pharmacy"],
                condition=Q(status__in=LIVE_STATUSES, pharmacy__isnull=False),
                name="certification_one_live_per_pharmacy",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]


class Patient(models.Model):
    """A patient's enrollment in one program by the prescriber who signed the Patient-Prescriber Agreement."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    prescriber = models.ForeignKey(Prescriber, on_delete=models.PROTECT, related_name="patients")
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    date_of_birth = models.DateField()
    # One of the categories of the program's rule set in force (checked when enrolled and at every decision).
    risk_category = models.CharField(max_length=40)
    agreement_signed_on = models.DateField()
    irregular_cycles = models.BooleanField(default=False)
    # Where the patient is tested, one of the program's time zones: the calendar days of the program's windows are
    # counted there. Empty: in all of the program's time zones, ending at the earliest end.
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="")
    status = models.CharField(max_length=12, choices=Status.choices)
    status_reason = models.CharField(max_length=500, blank=True)
    enrolled_at = models.DateTimeField()
    status_changed_at = models.DateTimeField()
    # When the first dispense was confirmed: therapy starts then, and the testing interval counts from it.
    therapy_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="patient_status_valid"),
            # One live enrollment per person and program: enrolling the same person twice would get round the
            # one-open-prescription and next-fill rules.
            models.UniqueConstraint(
                Lower("last_name"), Lower("first_name"), "date_of_birth", "program",
                condition=Q(status__in=LIVE_STATUSES), name="patient_one_live_enrollment",
            ),
        ]
        indexes = [models.Index(fields=["prescriber", "enrolled_at"])]


class TransferState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


class EnrollmentTransfer(models.Model):
    """A prescriber asked to enroll a person who is already enrolled in the program with another prescriber. The
    asking prescriber learns nothing of that enrollment (not that it exists, nor who holds it): the request goes
    to the program administrator, who checks with the patient and both offices, then moves the enrollment to the
    asking prescriber with the new agreement, or declines."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    prescriber = models.ForeignKey(Prescriber, on_delete=models.PROTECT, related_name="+",
                                   help_text="The prescriber who asked to enroll the patient.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    risk_category = models.CharField(max_length=40)
    agreement_signed_on = models.DateField()
    irregular_cycles = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=10, choices=TransferState.choices, default=TransferState.PENDING)
    requested_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True,
                                   blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "requested_at"])]


class TestResult(models.TextChoices):
    NEGATIVE = "negative"
    POSITIVE = "positive"


class TestSetting(models.TextChoices):
    LABORATORY = "laboratory", "Laboratory"
    MEDICAL_OFFICE = "medical_office", "Medical office"
    HOME = "home", "Home"


class PregnancyTest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="pregnancy_tests")
    collected_at = models.DateTimeField()
    result = models.CharField(max_length=8, choices=TestResult.choices)
    sensitivity_miu_ml = models.PositiveSmallIntegerField()
    # Where the specimen was collected and tested: which settings count is the rule set's.
    setting = models.CharField(max_length=20, choices=TestSetting.choices, default=TestSetting.LABORATORY)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(result__in=TestResult.values), name="pregnancy_test_result_valid"),
            models.CheckConstraint(condition=Q(setting__in=TestSetting.values), name="pregnancy_test_setting_valid"),
        ]
        indexes = [
            models.Index(fields=["patient", "-collected_at"]),
            models.Index(fields=["patient", "result", "sensitivity_miu_ml", "-collected_at"]),
        ]


class AttestationKind(models.TextChoices):
    CONTRACEPTION = "contraception"
    MALE_COUNSELING = "male_counseling"
    COUNSELING = "counseling"


class Attestation(models.Model):
    """What the prescriber attests for a prescription: contraception (a patient who can get pregnant), condom
    counseling (males, thalidomide class), counseling (iPLEDGE). Which are required is the rule set's."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="attestations")
    kind = models.CharField(max_length=16, choices=AttestationKind.choices)
    # Names of the contraception methods of the program's rule set.
    methods = ArrayField(models.CharField(max_length=40), default=list)
    abstinence = models.BooleanField(default=False)
    started_on = models.DateField(null=True, blank=True)
    attested_at = models.DateTimeField()
    attested_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=AttestationKind.values), name="attestation_kind_valid"),
            models.CheckConstraint(
                condition=~Q(kind=AttestationKind.CONTRACEPTION) | Q(started_on__isnull=False),
                name="attestation_contraception_has_start",
            ),
        ]
        indexes = [models.Index(fields=["patient", "kind", "-attested_at"])]


class PatientSurvey(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="surveys")
    completed_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["patient", "-completed_at"])]


class PregnancyReport(models.Model):
    """Opened at once when a positive pregnancy test is recorded; the sponsor reports it to the FDA."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="pregnancy_reports")
    pregnancy_test = models.OneToOneField(PregnancyTest, on_delete=models.PROTECT, related_name="report")
    opened_at = models.DateTimeField()


class IdempotencyRecord(models.Model):
    """The first answer to a POST made with an `Idempotency-Key`, replayed for a repeat of the same request."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_key")]


class NotificationKind(models.TextChoices):
    PREGNANCY_TEST_DUE_SOON = "pregnancy_test_due_soon"
    PREGNANCY_TEST_DUE = "pregnancy_test_due"
    SURVEY_DUE = "survey_due"
    BLOOD_COUNT_DUE = "blood_count_due"
    AUTHORIZATION_EXPIRING = "authorization_expiring"
    RDA_EXPIRING = "rda_expiring"
    CERTIFICATION_EXPIRING_30 = "certification_expiring_30"
    CERTIFICATION_EXPIRING_7 = "certification_expiring_7"
    POSITIVE_PREGNANCY_TEST = "positive_pregnancy_test"
    MATCH_LOCK = "match_lock"
    ENROLLMENT_TRANSFER = "enrollment_transfer"


class NotificationState(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(models.Model):
    """A reminder or an alert for one user, stored before anything is sent, so that nothing lives only in the
    broker. One per recipient, kind, subject and due date: planning it again changes nothing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recipient = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40, choices=NotificationKind.choices)
    priority = models.CharField(max_length=8, default="normal")
    subject_type = models.CharField(max_length=40)
    subject_id = models.CharField(max_length=64)
    due_on = models.DateField(help_text="The date the reminded thing is due; part of the uniqueness key.")
    send_at = models.DateTimeField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    state = models.CharField(max_length=10, choices=NotificationState.choices, default=NotificationState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "kind", "subject_id", "due_on"], name="notification_once"),
            models.CheckConstraint(condition=Q(state__in=NotificationState.values), name="notification_state_valid"),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notification_due",
                         condition=Q(state="pending")),
            models.Index(fields=["recipient", "-created_at"]),
        ]


# --- EHR integration ---------------------------------------------------------------------------------------
class CdsClient(models.Model):
    """An EHR registered by the program administrator to call the CDS Hooks services: the issuer of its JWTs and
    its public key (a JWK: EC P-384 for ES384, or RSA of 2048 bits or more for RS384)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.CharField(max_length=255)
    jwk = models.JSONField(help_text="The public key, as a JWK.")
    algorithm = models.CharField(max_length=5, help_text="ES384 or RS384, from the key.")
    registered_at = models.DateTimeField()
    registered_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="+")
    # A retired EHR's tokens are refused; its issuer may be registered again with a new key.
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(algorithm__in=["ES384", "RS384"]), name="cds_client_algorithm_valid"),
            models.UniqueConstraint(fields=["issuer"], condition=Q(retired_at__isnull=True),
                                    name="cds_client_one_live_per_issuer"),
        ]

    def __str__(self):
        return self.issuer


class CdsTokenUse(models.Model):
    """A JWT id (`jti`) an EHR has used: each is accepted once, until its token expires."""

    issuer = models.CharField(max_length=255)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="cds_token_used_once")]
        indexes = [models.Index(fields=["expires_at"])]


class PatientIdentifier(models.Model):
    """An identifier an EHR gives the patient of an enrollment (its system and value), linked by the prescriber's
    office so that the EHR's next request finds the enrollment."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="identifiers")
    system = models.CharField(max_length=255)
    value = models.CharField(max_length=255)
    linked_at = models.DateTimeField()
    linked_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "system", "value"], name="patient_identifier_once"),
        ]
        indexes = [models.Index(fields=["system", "value"])]
