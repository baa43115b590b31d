"""Failed-match locks: a pharmacy that gives too many wrong dates of birth for one authorization number, or too
many numbers that match no authorization, has its further dispense requests refused until a program
administrator clears the lock. The counts live in PostgreSQL, so every process sees them.

Requests of one pharmacy are decided side by side; what keeps a burst of them from slipping past a limit is the
pharmacy's turn at its counters (`rems_match_turn`, dispensing/migrations/0007), which each request takes once it
has its answer and before it writes anything:
- a failed match takes the turn alone (`failed_match_record`): failures take turns, and each is counted only if no
  lock was in force when its turn came;
- any other answer takes it shared (`match_lock_after_turn`): answers do not wait for each other, only for a
  failure being counted, whose outcome they then see; and a failure waits for the answers in flight.
A request whose turn comes after a lock is refused unseen instead; one that finds a lock already in force when it
starts is refused before anything of it is evaluated. So after the limit not one more request is answered,
however many arrive at once (`tests/integration/test_races.py`). The turn is an advisory lock in PostgreSQL's lock
queue: a failure waiting for it is not overtaken by answers that arrive after it.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused
from rems.prepared import fetch_one
from rems.program.models import NotificationKind
from rems.program.notifications import administrators, notification_create

from .models import MatchLock, MatchLockKind

# Unknown numbers count toward the lock within this window; birth-date failures count until cleared.
UNKNOWN_NUMBER_WINDOW = timedelta(hours=24)

# The lock in force, as a value of one statement: (kind, failures) or NULL. For the decision's first statement.
LOCK_IN_FORCE_SQL = ("(SELECT ARRAY[l.kind, l.failures::text] "
                     "FROM rems_match_lock_in_force(%(pharmacy)s::uuid, %(number)s::text) l)")
_TURN_SQL = "SELECT ARRAY[l.kind, l.failures::text] FROM rems_match_turn(%(pharmacy)s::uuid, %(number)s::text, %(failed)s::boolean) l"


def match_lock_of(pharmacy, authorization_number, found):
    """The lock as a statement read it (`LOCK_IN_FORCE_SQL`: kind and failures), or None."""
    if not found:
        return None
    kind, failures = found
    return MatchLock(pharmacy=pharmacy, kind=kind, failures=int(failures), authorization_number=authorization_number)


def _turn(pharmacy, authorization_number, *, failed):
    row = fetch_one(_TURN_SQL, {"pharmacy": pharmacy.pk, "number": authorization_number, "failed": failed})
    return match_lock_of(pharmacy, authorization_number, row[0] if row else None)


def match_lock_after_turn(pharmacy, authorization_number):
    """The lock in force for this pharmacy and number once the pharmacy's turn is granted (shared), or None.
    For an answer other than a failed match, before it writes anything; the turn is held until commit."""
    return _turn(pharmacy, authorization_number, failed=False)


def match_lock_message(lock):
    """Why the pharmacy's requests are refused, for the MATCH_ATTEMPTS_LIMIT check."""
    what = ("wrong dates of birth for this authorization number" if lock.kind == MatchLockKind.BIRTH_DATE
            else "unknown authorization numbers")
    return (f"Too many {what} from this pharmacy ({lock.failures}); further requests are refused until the program "
            "administrator clears them.")


def failed_match_record(*, actor, pharmacy, kind, authorization_number, now):
    """Count a failed match (`kind`: a MatchLockKind); past the limit, lock the pharmacy's further attempts and
    alert the administrators. Runs in the caller's transaction. Returns the lock in force when one came first (this
    failure's turn came after it): then nothing is counted, and the request is refused unseen."""
    in_force = _turn(pharmacy, authorization_number, failed=True)
    if in_force is not None:
        return in_force
    limit = (settings.REMS_BIRTH_DATE_FAILURES if kind == MatchLockKind.BIRTH_DATE
             else settings.REMS_UNKNOWN_NUMBER_FAILURES)
    # Unknown numbers are counted per pharmacy, whatever the number.
    number = authorization_number if kind == MatchLockKind.BIRTH_DATE else ""
    key = {"pharmacy": pharmacy, "kind": kind, "authorization_number": number}
    try:
        with transaction.atomic():
            lock = MatchLock.objects.create(**key, failures=0, first_failure_at=now, last_failure_at=now)
    except IntegrityError:
        lock = MatchLock.objects.select_for_update().get(**key, cleared_at__isnull=True)
    if kind == MatchLockKind.AUTHORIZATION_NUMBER and lock.locked_at is None and (
            lock.first_failure_at < now - UNKNOWN_NUMBER_WINDOW):
        lock.failures, lock.first_failure_at = 0, now
    lock.failures += 1
    lock.last_failure_at = now
    if lock.locked_at is None and lock.failures >= limit:
        lock.locked_at = now
        log_entry_write(
            actor=actor, action=Action.SECURITY_MATCH_LOCK, outcome="locked", object_type="match_lock",
            object_id=lock.pk, pharmacy_id=pharmacy.pk, now=now,
            detail={"kind": kind, "authorization_number": number or None, "failures": lock.failures},
        )
        notification_create(
            recipients=administrators(), kind=NotificationKind.MATCH_LOCK,
            subject_type="match_lock", subject_id=lock.pk, due_on=now.date(), send_at=now, now=now, priority="high",
            title="A pharmacy's dispense requests are locked after failed matches",
            body=f"Pharmacy {pharmacy.ncpdp_id}: {match_lock_message(lock)} Review it and clear the lock at "
                 f"/api/v1/match-locks/{lock.pk}/clear.",
        )
    lock.save()
    return None


class CannotClearLock(ActionRefused):
    pass


@transaction.atomic
def match_lock_clear(*, actor, lock, reason, now):
    """A program administrator clears a lock, with a reason: the pharmacy's requests are decided again."""
    changed = MatchLock.objects.filter(pk=lock.pk, cleared_at__isnull=True).update(cleared_at=now, cleared_by=actor)
    if not changed:
        raise CannotClearLock("This lock is already cleared.")
    log_entry_write(
        actor=actor, action=Action.SECURITY_MATCH_LOCK_CLEAR, outcome="cleared", object_type="match_lock",
        object_id=lock.pk, pharmacy_id=lock.pharmacy_id, now=now,
        detail={"kind": lock.kind, "authorization_number": lock.authorization_number or None, "reason": reason},
    )
    lock.refresh_from_db()
    return lock
