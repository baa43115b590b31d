"""A patient's requirements at a moment, as an EHR asks for them (`$rems-etasu`, CDS Hooks): the checks of a
prescription decision under the rule set in force, without a request. Reads only: nothing is decided, locked or
written here (the interface logs the query)."""

from rems.core import gates
from rems.program.selectors import rule_set_in_force

from . import facts
from .models import Prescription


def requirements_status(*, patient, now):
    """The decision a prescription for `patient` would meet at `now`, less the checks of the request itself,
    and the facts it was made on: its checks say what is met and what is missing, its rule set which rules they
    are, and the facts hold the patient's open authorization."""
    rule_set = rule_set_in_force(program=patient.program, now=now)
    decision_facts = facts.requirements_facts(patient=patient, rule_set=rule_set, now=now)
    return gates.prescription_decide(facts=decision_facts, now=now), decision_facts


def authorization_of(*, patient, number):
    """The patient's prescription authorization with this number, whatever its status, or None."""
    return Prescription.objects.filter(patient=patient, authorization_number=number).first()
