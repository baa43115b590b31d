"""Who may call what, and what each caller can see.

Every queryset a view uses starts from one of the `*_for(user)` functions, before any filter from the request,
so an object outside the caller's scope is simply not found (404), exactly like one that does not exist.
"""

from django.http import Http404
from rest_framework import permissions

from accounts.models import PHARMACY_ROLES, PRESCRIBER_ROLES, Role
from dispensing.models import DispenseAuthorization, Prescription
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
        allowed = getattr(view, "roles", {}).get(request.method if request.method != "HEAD" else "GET", set())
        return user.role in allowed


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
