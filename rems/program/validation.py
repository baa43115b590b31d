"""Checks of what people type that every caller gets (the API, the portal, the admin site and the commands
alike), because the services apply them: times that cannot be right, and the shape of a contraception
attestation. Interfaces may check the same earlier to point at the field, by calling these."""

from datetime import date, timedelta

from rems.core.errors import ActionRefused

# A recorded time may run ahead of the server's clock by this much (clock skew), never more.
CLOCK_SKEW = timedelta(minutes=5)
# Nothing the program records happened before this day: an earlier date is a typing error.
EARLIEST_DATE = date(1900, 1, 1)
# The values a request may carry at all (the rules of the program then decide within them): a pregnancy test's
# sensitivity, and a prescription's or a dispense's quantity and days of supply. Interfaces bound their fields
# with these.
SENSITIVITY_MIU_ML = (1, 10000)
QUANTITY = (1, 100000)
DAYS_SUPPLY = (1, 3650)


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


def sensitivity_check(sensitivity_miu_ml):
    """A pregnancy test's sensitivity is a whole number of mIU/mL within SENSITIVITY_MIU_ML."""
    low, high = SENSITIVITY_MIU_ML
    if isinstance(sensitivity_miu_ml, bool) or not isinstance(sensitivity_miu_ml, int) \
            or not low <= sensitivity_miu_ml <= high:
        raise InvalidValue(f"A test's sensitivity is a whole number of mIU/mL from {low} to {high}.",
                           field="sensitivity_miu_ml")


def contraception_methods_check(*, methods, abstinence, known=None, abstinence_allowed=True):
    """A contraception attestation names its methods or abstinence, not both, and each method once, from the
    `known` methods of the program (when given)."""
    methods = list(methods or ())
    if abstinence and not abstinence_allowed:
        raise InvalidValue("The program does not take abstinence instead of methods.", field="abstinence")
    if abstinence and methods:
        raise InvalidValue("Give either methods or abstinence, not both.", code="conflict", field="methods")
    if not abstinence and not methods:
        raise InvalidValue("Give the contraception methods, or abstinence: true.", code="required", field="methods")
    if len(set(methods)) != len(methods):
        raise InvalidValue("A method is listed twice.", code="duplicate", field="methods")
    unknown = sorted(set(methods) - set(known)) if known is not None else []
    if unknown:
        raise InvalidValue(f"Unknown contraception methods: {', '.join(unknown)}.", code="invalid_choice",
                           field="methods")


def contraception_attestation_check(*, methods, abstinence, started_on, known=None, abstinence_allowed=True):
    """`contraception_methods_check`, and the day contraception started is given."""
    contraception_methods_check(methods=methods, abstinence=abstinence, known=known,
                                abstinence_allowed=abstinence_allowed)
    if started_on is None:
        raise InvalidValue("Give the date contraception started.", code="required", field="started_on")


def counseling_attestation_check(*, methods, abstinence, started_on, kind="counseling"):
    """A counseling attestation (of `kind`: male_counseling, counseling) takes no methods, abstinence or start
    date."""
    if methods or abstinence or started_on:
        raise InvalidValue(f"A {kind.replace('_', ' ')} attestation takes no methods, abstinence or start date.")
