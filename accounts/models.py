"""Users, the role each one has, whom they act for, and their API keys."""

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as BaseUserManager
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    ADMIN = "admin", "Program administrator"
    AUDITOR = "auditor", "Auditor"
    PRESCRIBER = "prescriber", "Prescriber"
    DELEGATE = "delegate", "Prescriber's delegate"
    PHARMACIST = "pharmacist", "Pharmacy staff"
    PHARMACY_MANAGER = "pharmacy_manager", "Pharmacy's authorized representative"


PRESCRIBER_ROLES = {Role.PRESCRIBER, Role.DELEGATE}
PHARMACY_ROLES = {Role.PHARMACIST, Role.PHARMACY_MANAGER}
PROGRAM_ROLES = {Role.ADMIN, Role.AUDITOR}


class UserManager(BaseUserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # A superuser acts for the program: it is an administrator.
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person or system that calls the service. It acts for exactly one prescriber, one pharmacy, or the
    program (administrators and auditors)."""

    role = models.CharField(max_length=20, choices=Role.choices)
    prescriber = models.ForeignKey(
        "rems.Prescriber", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    pharmacy = models.ForeignKey("rems.Pharmacy", null=True, blank=True, on_delete=models.PROTECT, related_name="users")

    objects = UserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="user_role_valid"),
            models.CheckConstraint(
                condition=(
                    Q(role__in=sorted(PRESCRIBER_ROLES), prescriber__isnull=False, pharmacy__isnull=True)
                    | Q(role__in=sorted(PHARMACY_ROLES), prescriber__isnull=True, pharmacy__isnull=False)
                    | Q(role__in=sorted(PROGRAM_ROLES), prescriber__isnull=True, pharmacy__isnull=True)
                ),
                name="user_acts_for_one_party",
            ),
        ]


class ApiKey(models.Model):
    """An API key. Only the SHA-256 of the key is stored; the key itself is shown once, when issued."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to recognise it in a list.")
    key_hash = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"])]


class LoginState(models.Model):
    """Failed browser or admin-site logins of one username, and the lockout they lead to."""

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveSmallIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)


class RequestCounter(models.Model):
    """Requests counted per scope (an API key, a pharmacy) and fixed window, in the database so that every
    process shares the same count, and a broker outage cannot switch throttling off."""

    scope = models.CharField(max_length=80)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "window_start"], name="request_counter_window")]
        indexes = [models.Index(fields=["window_start"])]
