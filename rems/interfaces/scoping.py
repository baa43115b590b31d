"""What each caller may see: the API and the portal start every lookup here.

Every queryset an interface uses starts from one of the `*_for(user)` functions, before any filter from the
request, so an object outside the caller's scope is simply not found (404), exactly like one that does not
exist.
"""

from django.http import Http404

from accounts.models import PHARMACY_ROLES, PRESCRIBER_ROLES, PROGRAM_ROLES, Role, User
from dispensing.models import DispenseAuthorization, MatchLock, Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import Certification, Notification, Patient, Pharmacy, Prescriber

ADMIN = {Role.ADMIN}
READERS = set(PROGRAM_ROLES)  # administrators and auditors see everything
PRESCRIBER_OFFICE = set(PRESCRIBER_ROLES)
PHARMACY_STAFF = set(PHARMACY_ROLES)
EVERYONE = set(Role)


def prescribers_for(user):
    """The readers see every prescriber; a prescriber's office its own."""
    qs = Prescriber.objects.all()
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(pk=user.prescriber_id)
    return qs.none()


def pharmacies_for(user):
    """The readers see every pharmacy; a pharmacy's staff their own."""
    qs = Pharmacy.objects.all()
    if user.role in READERS:
        return qs
    if user.role in PHARMACY_STAFF:
        return qs.filter(pk=user.pharmacy_id)
    return qs.none()


def certifications_for(user):
    """The readers see every certification; an office or a pharmacy the certifications of its own party."""
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
    """The readers see every prescription authorization; a prescriber's office its own prescriber's. Pharmacies
    reach one only by its number, through a dispense decision."""
    qs = Prescription.objects.select_related("product", "program")
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(prescriber_id=user.prescriber_id)
    return qs.none()


def dispense_authorizations_for(user):
    """The readers see every RDA; a pharmacy's staff their own pharmacy's."""
    qs = DispenseAuthorization.objects.select_related("prescription__program", "product")
    if user.role in READERS:
        return qs
    if user.role in PHARMACY_STAFF:
        return qs.filter(pharmacy_id=user.pharmacy_id)
    return qs.none()


def match_locks_for(user):
    """Failed-match locks: the program's readers see them all."""
    if user.role in READERS:
        return MatchLock.objects.select_related("pharmacy")
    return MatchLock.objects.none()


def audit_events_for(user):
    """The compliance log, for its readers only (administrators and auditors)."""
    if user.role in READERS:
        return ComplianceLogEntry.objects.all()
    return ComplianceLogEntry.objects.none()


def audit_events_for_prescription(user, prescription):
    """The history of one prescription authorization, in order. `prescription` comes from
    `prescriptions_for(user)`: the prescriber's office sees its own prescriptions' history (interfaces show it
    a reduced form of each entry), the readers every prescription's."""
    base = audit_events_for(user) if user.role in READERS else ComplianceLogEntry.objects.all()
    return base.filter(prescription_id=prescription.pk).order_by("seq")


def notifications_for(user):
    """Everyone sees their own notifications, and nobody else's."""
    return Notification.objects.filter(recipient=user)


def users_for(user):
    """Administrators manage every user; a pharmacy's authorized representative manages its own staff."""
    if user.role == Role.ADMIN:
        return User.objects.all()
    if user.role == Role.PHARMACY_MANAGER:
        return User.objects.filter(pharmacy_id=user.pharmacy_id, role=Role.PHARMACIST)
    return User.objects.none()


def get_in_scope(queryset, **lookup):
    """Fetch one object from a scoped queryset; anything else is a 404."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise Http404
    return obj
