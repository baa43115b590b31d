"""Checks of what people type that every caller gets (the API, the portal, the admin site and the commands
alike), because the services apply them: times that cannot be right, and the shape of a contraception
attestation. Interfaces may check the same earlier to point at the field, by calling these."""

from datetime import date, timedelta

from rems.core.errors import ActionRefused

# A recorded time may run ahead of the server's clock by this much (clock skew), never more.
CLOCK_SKEW = timedelta(minutes=5)
# Nothing the program records happened before this day: an earlier date is a typing error.
EARLIEST_DATE = date(1900, 1, 1)


class InvalidValue(ActionRefused):
    """A value that cannot be right: a date in the future, before a birth, or before 1900; an attestation that
    contradicts itself. `field` names the input it concerns, when one does."""

    code = "invalid"

    def __init__(self, message, *, code=None, field=""):
        super().__init__(message, code=code)
        self.field = field


def plausible_date_check(day, what, *, field=""):
    """Refuse a day before EARLIEST_DATE."""
    if day < EARLIEST_DATE:
        raise InvalidValue(f"{what} cannot be before {EARLIEST_DATE}.", field=field)


def not_in_future_check(moment, now, what, *, field=""):
    """Refuse a moment later than `now` by more than the clock skew, or implausibly early."""
    if moment > now + CLOCK_SKEW:
        raise InvalidValue(f"{what} cannot be in the future.", field=field)
    plausible_date_check(moment.date(), what, field=field)


def contraception_attestation_check(*, methods, abstinence, started_on):
    """A contraception attestation names its methods or abstinence, not both, each method once, and the day
    contraception started."""
    methods = list(methods or ())
    if abstinence and methods:
        raise InvalidValue("Give either methods or abstinence, not both.", code="conflict", field="methods")
    if not abstinence and not methods:
        raise InvalidValue("Give the contraception methods, or the commitment to abstinence.", code="required",
                           field="methods")
    if len(set(methods)) != len(methods):
        raise InvalidValue("A method is listed twice.", code="duplicate", field="methods")
    if started_on is None:
        raise InvalidValue("Give the date contraception started.", code="required", field="started_on")


def male_counseling_attestation_check(*, methods, abstinence, started_on):
    """A male counseling attestation takes no methods, abstinence or start date."""
    if methods or abstinence or started_on:
        raise InvalidValue("A male counseling attestation takes no methods, abstinence or start date.")
