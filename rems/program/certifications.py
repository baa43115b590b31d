"""Certifications of prescribers and pharmacies in a program: granted by the program administrator, suspended,
reinstated or revoked, and expired at the end of their period. Each change is one conditional update and its
compliance-log entry, in one transaction."""

from django.db import IntegrityError, transaction

from rems.compliance_log.actions import CERTIFICATION_CHANGES, Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused

from .models import LIVE_STATUSES, Certification, Status
from .selectors import party_barred_in, rule_set_in_force


class CannotCertify(ActionRefused):
    pass


class CertificationPeriodUnknown(CannotCertify):
    """No valid rule set is in force, so the length of a certification is unknown."""


class CannotChangeCertification(ActionRefused):
    pass


class PartyBarred(ActionRefused):
    """The prescriber or pharmacy the actor acts for is suspended or revoked in the program."""

    code = "party_barred"


def party_bar_check(*, actor, program):
    """Refuse what `actor` does for a prescriber or pharmacy suspended or revoked in `program`: a bar holds in
    its program only (a suspension in one program does not stop the party's work in another). The decisions
    are not refused here; their gates deny them."""
    prescriber_id, pharmacy_id = getattr(actor, "prescriber_id", None), getattr(actor, "pharmacy_id", None)
    if party_barred_in(program_id=program.pk, prescriber_id=prescriber_id, pharmacy_id=pharmacy_id):
        party = "prescriber" if prescriber_id else "pharmacy"
        raise PartyBarred(f"The {party} you act for is suspended or revoked in {program.slug}; nothing may be done "
                          f"for it in that program. Contact the program administrator.")


def _party_ids(certification):
    return {"prescriber_id": certification.prescriber_id, "pharmacy_id": certification.pharmacy_id}


@transaction.atomic
def certification_create(*, actor, program, now, prescriber=None, pharmacy=None):
    """The administrator records that training and the agreement are complete: the party is certified."""
    if (prescriber is None) == (pharmacy is None):
        raise ValueError("certify a prescriber or a pharmacy, one of them")
    party = {"prescriber": prescriber} if prescriber else {"pharmacy": pharmacy}
    existing = Certification.objects.select_for_update().filter(program=program, **party)
    if existing.filter(status=Status.REVOKED).exists():
        raise CannotCertify("This party's certification in the program was revoked; revocation is permanent.")
    live = existing.filter(status__in=LIVE_STATUSES).first()
    if live is not None:
        if live.expires_at > now:
            raise CannotCertify(f"This party already has a {live.status} certification in the program.")
        certification_expire(certification=live, now=now)
    rule_set = rule_set_in_force(program=program, now=now)
    if rule_set.parameters is None:
        raise CertificationPeriodUnknown(
            f"No valid rule set is in force for {program.slug}; certification period unknown.")
    period = rule_set.parameters.certification_period("prescriber" if prescriber else "pharmacy")
    try:
        with transaction.atomic():
            certification = Certification.objects.create(
                program=program, status=Status.ACTIVE, certified_at=now, expires_at=now + period,
                status_changed_at=now, **party,
            )
    except IntegrityError:
        raise CannotCertify("This party already has a live certification in the program.") from None
    log_entry_write(
        actor=actor, action=Action.CERTIFICATION_CREATE, outcome="active", object_type="certification",
        object_id=certification.pk, program=program.slug, rule_set=rule_set.label, now=now,
        detail={"expires_at": certification.expires_at.isoformat()}, **_party_ids(certification),
    )
    return certification


def certification_expire(*, certification, now):
    """Expire a live certification past its end; does nothing otherwise. Returns how many changed (0 or 1)."""
    changed = Certification.objects.filter(
        pk=certification.pk, status__in=LIVE_STATUSES, expires_at__lte=now
    ).update(status=Status.EXPIRED, status_changed_at=now, status_reason="certification period ended")
    if changed:
        log_entry_write(
            actor=None, action=Action.CERTIFICATION_EXPIRE, outcome="expired", object_type="certification",
            object_id=certification.pk, program=certification.program.slug, now=now, **_party_ids(certification),
        )
    return changed


def certifications_expire_due(*, now, batch_size):
    """The sweep: expire every live certification past its end, in batches (SKIP LOCKED: two sweeps never share
    a row, and a rerun finds nothing). Returns how many expired."""
    expired = 0
    while True:
        with transaction.atomic():
            rows = list(
                Certification.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("program")
                .filter(status__in=LIVE_STATUSES, expires_at__lte=now)[:batch_size]
            )
            for certification in rows:
                expired += certification_expire(certification=certification, now=now)
        if len(rows) < batch_size:
            return expired


_PAST = {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked"}
_TRANSITIONS = {
    # action: (from statuses, to status)
    "suspend": ([Status.ACTIVE, Status.PENDING], Status.SUSPENDED),
    "reinstate": ([Status.SUSPENDED], Status.ACTIVE),
    "revoke": ([Status.PENDING, Status.ACTIVE, Status.SUSPENDED], Status.REVOKED),
}


@transaction.atomic
def certification_change_status(*, actor, certification, action, reason, now):
    """Suspend, reinstate or revoke, as one conditional update: the row changes only from an allowed status."""
    from_statuses, to_status = _TRANSITIONS[action]
    rows = Certification.objects.filter(pk=certification.pk, status__in=from_statuses)
    if action == "reinstate":
        rows = rows.filter(expires_at__gt=now)
    changed = rows.update(status=to_status, status_changed_at=now, status_reason=reason)
    certification.refresh_from_db()
    if not changed:
        raise CannotChangeCertification(
            f"A {certification.status} certification cannot be {_PAST[action]}"
            + (" after its expiry" if action == "reinstate" and certification.status == Status.SUSPENDED else "")
            + "."
        )
    log_entry_write(
        actor=actor, action=CERTIFICATION_CHANGES[action], outcome=to_status, object_type="certification",
        object_id=certification.pk, program=certification.program.slug, now=now, detail={"reason": reason},
        **_party_ids(certification),
    )
    return certification
