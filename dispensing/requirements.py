"""A patient's requirements at a moment, as an EHR asks for them (`$rems-etasu`, CDS Hooks): the checks of a
prescription decision under the rule set in force, without a request. Reads only: nothing is decided, locked or
written here (the interface logs the query)."""

from rems.core import gates
from rems.program.selectors import rule_set_in_force

from . import facts
from .models import OPEN_PRESCRIPTION_STATUSES, Prescription


def requirements_status(*, patient, now):
    """The decision a prescription for `patient` would meet at `now`, less the checks of the request itself:
    its checks say what is met and what is missing, and its rule set which rules they are."""
    rule_set = rule_set_in_force(program=patient.program, now=now)
    return gates.prescription_decide(facts=facts.requirements_facts(patient=patient, rule_set=rule_set, now=now),
                                     now=now)


def open_authorization(*, patient, now, number=None):
    """The patient's prescription authorization still open at `now` (the one with `number`, when given), or
    None."""
    open_ones = Prescription.objects.filter(patient=patient, status__in=OPEN_PRESCRIPTION_STATUSES,
                                            expires_at__gt=now)
    if number is not None:
        open_ones = open_ones.filter(authorization_number=number)
    return open_ones.order_by("-issued_at").first()


def authorization_of(*, patient, number):
    """The patient's prescription authorization with this number, whatever its status, or None."""
    return Prescription.objects.filter(patient=patient, authorization_number=number).first()
