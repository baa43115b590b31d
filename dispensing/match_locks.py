"""Failed-match locks: a pharmacy that gives too many wrong dates of birth for one authorization number, or too
many numbers that match no authorization, has its further dispense requests refused until a program
administrator clears the lock. The counts live in PostgreSQL, so every process sees them.

Requests of one pharmacy are decided side by side; what keeps a burst of them from slipping past a limit is the
order in which they read and write the counters, once each has its answer and before it is kept:
- a failed match locks its counter row (`failed_match_record`, FOR UPDATE): failures of one kind take turns, and
  each is counted only if no lock was in force when its turn came;
- any other answer reads the pharmacy's counters with a share lock (`match_lock_held`, FOR SHARE): it waits for a
  failure being counted and sees its outcome, and a failure waits for it in turn.
A request whose answer would come after a lock is refused unseen instead: after the limit, not one more request is
evaluated, however many arrive at once (`tests/integration/test_races.py`).
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused
from rems.program.models import NotificationKind
from rems.program.notifications import administrators, notification_create

from .models import MatchLock, MatchLockKind
from rems.prepared import prepared_cursor

# Unknown numbers count toward the lock within this window; birth-date failures count until cleared.
UNKNOWN_NUMBER_WINDOW = timedelta(hours=24)


def match_lock_in_force(pharmacy, authorization_number):
    """The lock refusing this pharmacy's requests for this number (or for every number), if there is one."""
    return (
        MatchLock.objects.filter(pharmacy=pharmacy, cleared_at__isnull=True, locked_at__isnull=False)
        .filter(Q(kind=MatchLockKind.AUTHORIZATION_NUMBER)
                | Q(kind=MatchLockKind.BIRTH_DATE, authorization_number=authorization_number))
        .first()
    )


# The counters that can refuse a pharmacy's request for a number, share-locked until the request's transaction ends.
_HELD_SQL = f"""SELECT kind, failures, locked_at IS NOT NULL FROM {MatchLock._meta.db_table}
 WHERE pharmacy_id = %(pharmacy)s::uuid AND cleared_at IS NULL
   AND (kind = '{MatchLockKind.AUTHORIZATION_NUMBER}'
        OR (kind = '{MatchLockKind.BIRTH_DATE}' AND authorization_number = %(number)s::text))
 FOR SHARE"""


def match_lock_held(pharmacy, authorization_number):
    """The lock in force for this pharmacy and number, read after every failure counted before it (see above);
    None when there is none. Runs in the caller's transaction, which keeps the counters share-locked."""
    with prepared_cursor() as cursor:
        cursor.execute(_HELD_SQL, {"pharmacy": pharmacy.pk, "number": authorization_number})
        rows = cursor.fetchall()
    return next((MatchLock(pharmacy=pharmacy, kind=kind, failures=failures, authorization_number=authorization_number)
                 for kind, failures, locked in rows if locked), None)


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
    in_force = match_lock_in_force(pharmacy, authorization_number)
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
        if lock.locked_at is not None:
            return lock
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
