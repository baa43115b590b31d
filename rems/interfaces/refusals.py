"""What the HTTP interfaces (the API and the portal) share about refusals: the status that answers each refusal
of the domain (one table: a refusal's status is found by its class, the most specific first), and the log entry
of a request refused for the caller's role or party."""

from django.utils import timezone

from accounts.services import CannotCreateUser, CannotDeactivateSelf, UsernameTaken, permission_refusal_log
from dispensing.dispenses import DispenseNotAllowed
from rems.core.errors import ActionRefused
from rems.program.certifications import CertificationPeriodUnknown, PartyBarred
from rems.program.ehr import ClientExists
from rems.program.idempotency import IdempotencyKeyReused
from rems.program.patients import AlreadyEnrolled, CannotEnroll
from rems.program.programs import CannotLoadProgram
from rems.program.records import CannotRecord
from rems.program.validation import InvalidValue

REFUSAL_STATUS = {
    # The request is wrong: a value that cannot be right, a program file that does not load, a user that
    # cannot exist.
    InvalidValue: 400,
    CannotLoadProgram: 400,
    CannotCreateUser: 400,
    # Not for you to do.
    CannotDeactivateSelf: 403,
    PartyBarred: 403,
    # The record's state does not allow it (a duplicate, a transition from the wrong status).
    ActionRefused: 409,
    AlreadyEnrolled: 409,
    ClientExists: 409,
    UsernameTaken: 409,
    # A rule of the program does not allow it now.
    CannotEnroll: 422,
    CannotRecord: 422,
    CertificationPeriodUnknown: 422,
    DispenseNotAllowed: 422,
    IdempotencyKeyReused: 422,
}


def refusal_status(refusal):
    """The HTTP status that answers `refusal`."""
    for cls in type(refusal).__mro__:
        if cls in REFUSAL_STATUS:
            return REFUSAL_STATUS[cls]
    raise TypeError(f"{refusal!r} is not a refusal")


def refusal_log(request, reason):
    """Log a request refused for the caller's role or party (at most once a minute per user)."""
    permission_refusal_log(user=request.user, path=request.path, method=request.method, reason=reason,
                           now=timezone.now())
