"""Who may call what, and what each caller can see.

Every queryset a view uses starts from one of the `*_for(user)` functions, before any filter from the request,
so an object outside the caller's scope is simply not found (404), exactly like one that does not exist.
"""

from django.http import Http404
from django.utils import timezone
from rest_framework import permissions

from accounts.models import PHARMACY_ROLES, PRESCRIBER_ROLES, Role, User
from accounts.services import party_is_barred
from accounts.throttling import first_in_window
from dispensing.models import DispenseAuthorization, Prescription
from rems.audit import log_entry_write
from rems.models import Certification, ComplianceLogEntry, Patient, Pharmacy, Prescriber

ADMIN = {Role.ADMIN}
READERS = {Role.ADMIN, Role.AUDITOR}
PRESCRIBER_OFFICE = set(PRESCRIBER_ROLES)
PHARMACY_STAFF = set(PHARMACY_ROLES)


class RolePermission(permissions.BasePermission):
    """Views declare `roles = {"GET": {...}, "POST": {...}}`; a method not listed is allowed to nobody."""

    message = "Your role does not allow this operation."

    def has_permission(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        method = request.method if request.method != "HEAD" else "GET"
        allowed = getattr(view, "roles", {}).get(method, set())
        if user.role not in allowed:
            _log_refusal(request, "role")
            return False
        if method not in getattr(view, "allowed_when_barred", ()) and party_is_barred(user):
            self.message = ("The prescriber or pharmacy you act for is suspended or revoked in the program; every "
                            "operation acting for it is refused.")
            _log_refusal(request, "party suspended or revoked")
            return False
        return True


def _log_refusal(request, reason):
    user = request.user
    # One entry per user and minute is enough to see it; a script hammering a route cannot flood the log.
    if not first_in_window(f"refused:{user.pk}", timezone.now()):
        return
    log_entry_write(
        actor=user, action="security.permission_refused", outcome="refused", object_type="route",
        object_id=request.path[:64], now=timezone.now(), prescriber_id=user.prescriber_id,
        pharmacy_id=user.pharmacy_id, detail={"method": request.method, "reason": reason},
    )


def prescribers_for(user):
    qs = Prescriber.objects.all()
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(pk=user.prescriber_id)
    return qs.none()


def pharmacies_for(user):
    qs = Pharmacy.objects.all()
    if user.role in READERS:
        return qs
    if user.role in PHARMACY_STAFF:
        return qs.filter(pk=user.pharmacy_id)
    return qs.none()


def certifications_for(user):
    qs = Certification.objects.select_related("program")
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(prescriber_id=user.prescriber_id)
    if user.role in PHARMACY_STAFF:
        return qs.filter(pharmacy_id=user.pharmacy_id)
    return qs.none()


def patients_for(user):
    """Pharmacies never list patients: they see one only through a dispense decision."""
    qs = Patient.objects.select_related("program")
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(prescriber_id=user.prescriber_id)
    return qs.none()


def prescriptions_for(user):
    qs = Prescription.objects.select_related("product", "program")
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(prescriber_id=user.prescriber_id)
    return qs.none()


def dispense_authorizations_for(user):
    qs = DispenseAuthorization.objects.select_related("prescription__program", "product")
    if user.role in READERS:
        return qs
    if user.role in PHARMACY_STAFF:
        return qs.filter(pharmacy_id=user.pharmacy_id)
    return qs.none()


def audit_events_for(user):
    if user.role in READERS:
        return ComplianceLogEntry.objects.all()
    return ComplianceLogEntry.objects.none()


def get_in_scope(queryset, **lookup):
    """Fetch one object from a scoped queryset; anything else is a 404."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise Http404
    return obj


def users_for(user):
    """Administrators manage every user; a pharmacy's authorized representative manages its own staff."""
    if user.role == Role.ADMIN:
        return User.objects.all()
    if user.role == Role.PHARMACY_MANAGER:
        return User.objects.filter(pharmacy_id=user.pharmacy_id, role=Role.PHARMACIST)
    return User.objects.none()
