"""Writing the compliance log. Called by services only, inside the transaction of the change it records."""

import contextvars
import uuid

from .models import ComplianceLogEntry

request_id_var = contextvars.ContextVar("request_id", default="")


def actor_fields(actor):
    """Who acted: the user, the role, and the prescriber or pharmacy acted for. None is the system itself."""
    if actor is None:
        return {"actor_user_id": None, "actor_username": "system", "actor_role": "system"}
    return {"actor_user_id": actor.pk, "actor_username": actor.username, "actor_role": actor.role}


def log_entry_write(
    *,
    actor,
    action,
    outcome,
    object_type,
    object_id,
    now,
    program="",
    patient_id=None,
    prescriber_id=None,
    pharmacy_id=None,
    prescription_id=None,
    rule_set="",
    checks=(),
    facts=None,
    detail=None,
    entry_id=None,
):
    detail = dict(detail or {})
    if actor is not None:
        if actor.prescriber_id:
            detail.setdefault("acting_for_prescriber", str(actor.prescriber_id))
        if actor.pharmacy_id:
            detail.setdefault("acting_for_pharmacy", str(actor.pharmacy_id))
    return ComplianceLogEntry.objects.create(
        id=entry_id or uuid.uuid4(),
        occurred_at=now,
        action=action,
        outcome=outcome,
        program=program,
        object_type=object_type,
        object_id=str(object_id),
        patient_id=patient_id,
        prescriber_id=prescriber_id,
        pharmacy_id=pharmacy_id,
        prescription_id=prescription_id,
        rule_set=rule_set,
        checks=list(checks),
        facts=facts or {},
        detail=detail,
        request_id=request_id_var.get(),
        **actor_fields(actor),
    )
