"""Reads shared by services and the API. Scoping to the caller happens in `rems.api.scope`."""

from django.db.models import Q

from .gates import CertificationFact, RuleSetFact
from .models import Certification, RuleSet, Status
from .rules import InvalidRuleSet, RuleParameters


def rule_set_in_force(*, program, now):
    """The rule set of `program` in force at `now`, as a fact; a missing or invalid one is a fact too, and the
    gate engine denies on it."""
    rule_set = (
        RuleSet.objects.filter(program=program, effective_at__lte=now).order_by("-effective_at").first()
    )
    if rule_set is None:
        return RuleSetFact(label=f"{program.slug}@none", parameters=None, problem="no rule set in force")
    label = f"{program.slug}@{rule_set.version}"
    try:
        return RuleSetFact(label=label, parameters=RuleParameters.from_dict(rule_set.parameters))
    except InvalidRuleSet as exc:
        return RuleSetFact(label=label, parameters=None, problem=f"rule set {label} is invalid: {exc}")


def certification_fact(*, program_id, prescriber_id=None, pharmacy_id=None):
    """The party's live certification (pending, active or suspended), else its latest one, else None."""
    qs = Certification.objects.filter(program_id=program_id)
    qs = qs.filter(prescriber_id=prescriber_id) if prescriber_id else qs.filter(pharmacy_id=pharmacy_id)
    row = (
        qs.order_by("-certified_at")
        .values("status", "expires_at")
        .first()
    )
    if row is None:
        return None
    return CertificationFact(status=row["status"], expires_at=row["expires_at"])


def certification_is_active(*, program_id, now, prescriber_id=None, pharmacy_id=None):
    fact = certification_fact(program_id=program_id, prescriber_id=prescriber_id, pharmacy_id=pharmacy_id)
    return fact is not None and fact.status == Status.ACTIVE and fact.expires_at > now


def certification_facts(*, program_id, prescriber_id, pharmacy_id):
    """The prescriber's and the pharmacy's latest certifications in the program, in one query."""
    latest = {}
    rows = (
        Certification.objects.filter(program_id=program_id)
        .filter(Q(prescriber_id=prescriber_id) | Q(pharmacy_id=pharmacy_id))
        .order_by("-certified_at")
        .values("prescriber_id", "pharmacy_id", "status", "expires_at")
    )
    for row in rows:
        party = "prescriber" if row["prescriber_id"] else "pharmacy"
        latest.setdefault(party, CertificationFact(status=row["status"], expires_at=row["expires_at"]))
    return latest.get("prescriber"), latest.get("pharmacy")
