"""How the portal prints what people read off a page: numbers in groups, states in words."""

from django import template
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from dispensing.models import OPEN_PRESCRIPTION_STATUSES, DispenseStatus
from rems.core.identifiers import authorization_number_display

register = template.Library()

# A state in the words of what happened to the record, not the database's.
PRESCRIPTION_STATES = {
    "issued": "Open: waiting for a pharmacy",
    "authorized": "Held by a pharmacy (RDA approved)",
    "dispensed": "Dispensed",
    "expired": "Lapsed undispensed",
    "cancelled": "Cancelled",
}
RDA_STATES = {
    "approved": "Approved: not dispensed yet",
    "dispensed": "Dispensed",
    "reversed": "Reversed",
    "expired": "Lapsed undispensed",
}
OUTCOMES = {"approved": "Approved", "denied": "Denied"}


@register.filter
def number(value):
    """An authorization or RDA number in its groups (PGQ1W-JHKBH-FD). The hyphens are drawn by the stylesheet,
    not typed in the page, so that the number copies and pastes as one word, as the counter and the API take it."""
    groups = authorization_number_display(str(value or "")).split("-")
    return mark_safe('<span class="number-groups">'  # noqa: S308 - every group is escaped
                     + "".join(f'<span class="number-group">{escape(group)}</span>' for group in groups) + "</span>")


def _lapsed(record, open_statuses):
    # Past its end, an open record has lapsed, whether or not the periodic sweep has marked it yet.
    return record.status in open_statuses and record.expires_at <= timezone.now()


_OPEN = (*OPEN_PRESCRIPTION_STATUSES, DispenseStatus.APPROVED)


@register.filter
def is_open(record):
    """An authorization or an RDA that can still be used: open, and not past its end."""
    return record.status in _OPEN and not _lapsed(record, _OPEN)


@register.filter
def prescription_state(prescription):
    if _lapsed(prescription, OPEN_PRESCRIPTION_STATUSES):
        return PRESCRIPTION_STATES["expired"]
    return PRESCRIPTION_STATES.get(prescription.status, prescription.status)


@register.filter
def rda_state(rda):
    if _lapsed(rda, (DispenseStatus.APPROVED,)):
        return RDA_STATES["expired"]
    return RDA_STATES.get(rda.status, rda.status)


@register.filter
def outcome(value):
    return OUTCOMES.get(value, (value or "").replace("_", " ").capitalize())


@register.filter
def initials(person):
    """What the counter shows of whom a dispense is for: enough to check against the prescription."""
    return f"{person.first_name[:1]}. {person.last_name[:1]}.".upper()
