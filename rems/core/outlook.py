"""What is due and what is missing for a patient, as the prescriber's patient list shows it.

Pure, like the gate engine: it takes the facts a prescription decision would take and `now`, and says, item by
item, what the next prescription will need and by when. Every moment comes from `timing`, the same functions the
gates decide with, so "due" here is the moment the gate starts refusing, and a requirement of each prescription
is not "missing" before the next prescription can be asked for.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import gates, reminders, timing
from .identifiers import authorization_number_display
from .wording import day, plural, when

OK = "ok"
DUE_SOON = "due_soon"
OVERDUE = "overdue"
MISSING = "missing"

# How far ahead an item counts as "due soon": when the first reminder of a test goes out.
SOON = reminders.DUE_SOON


@dataclass(frozen=True)
class DueItem:
    kind: str  # pregnancy_test, attestation, counseling, survey, authorization
    label: str
    state: str  # ok, due_soon, overdue, missing
    text: str
    due_at: datetime | None = None


def _state_for(due_at, now):
    if due_at <= now:
        return OVERDUE
    if due_at - now <= SOON:
        return DUE_SOON
    return OK


def next_prescription_from(history, params, now):
    """The first moment the next prescription can be asked for: once the supply last dispensed is nearly used up
    (NEXT_FILL_TIMING), and not while an authorization is open (ONE_OPEN_PRESCRIPTION): at the earliest when it
    lapses, and if it is dispensed, once that supply is nearly used up."""
    moments = [now, timing.next_fill_from(params, history.last_dispense) or now]
    if history.open_prescription is not None:
        moments.append(history.open_prescription.expires_at)
    return max(moments)


def _before_therapy(patient, history, params, now):
    label = "Pregnancy tests"
    fewest, most = params.first_test_days_before
    negatives = timing.qualifying_negatives(history.tests, params, params.test_settings_first)
    recent = [t for t in negatives if t.collected_at >= now - timedelta(days=most)]
    if not recent:
        return DueItem(
            "pregnancy_test", label, MISSING,
            f"Before the first prescription: a negative test {fewest} to {most} days before it, and a second "
            + (f"within {params.second_test_max_hours_before} hours before it."
               if params.second_test_max_hours_before else
               f"at least {plural(params.first_tests_min_days_apart, 'day')} after the first."),
        )
    first = recent[-1]  # the oldest still in the window: the one that can count as the first test
    ready_at, deadline = timing.first_test_ready_at(params, first.collected_at)
    if now < ready_at:
        text = (f"First test collected {day(first.collected_at)}. Collect the second test and prescribe "
                f"between {day(ready_at)} and {day(deadline)}.")
        return DueItem("pregnancy_test", label, OK, text, ready_at)
    checks = {c.code: c for c in gates.check_pregnancy_tests(patient, history, params, now)}
    if all(checks[code].passed for code in ("PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "PREGNANCY_TEST_RECENT")):
        latest = timing.qualifying_negatives(history.tests, params, params.test_settings_second)[0]
        until = [deadline, timing.recent_test_fails_at(params, patient, latest.collected_at)]
        second_ends = timing.second_test_fails_at(params, latest.collected_at)
        if second_ends is not None:
            until.append(second_ends)
        ready_until = min(until)
        return DueItem("pregnancy_test", label, OK,
                       f"Both tests on file ({day(first.collected_at)} and {day(latest.collected_at)}): ready to "
                       f"prescribe until {when(ready_until)}.", ready_until)
    if params.second_test_max_hours_before:
        text = (f"First test collected {day(first.collected_at)}. Collect the second test within "
                f"{params.second_test_max_hours_before} hours before prescribing, by {day(deadline)}.")
    else:
        text = (f"First test collected {day(first.collected_at)}. Collect the second test at least "
                f"{plural(params.first_tests_min_days_apart, 'day')} after it, and prescribe within its window, by "
                f"{day(deadline)}.")
    return DueItem("pregnancy_test", label, _state_for(deadline, now), text, deadline)


def _during_therapy(patient, history, params, now):
    label = "Next pregnancy test"
    negatives = timing.qualifying_negatives(history.tests, params, params.test_settings_during_therapy)
    latest = negatives[0] if negatives else None
    if latest is None:
        return DueItem("pregnancy_test", label, OVERDUE,
                       f"No negative test in the last {params.pregnancy_test_lookback_days} days; one is due now.")
    # Two rules ask for a test: the testing interval (where the program has one), and a test recent enough for
    # the next prescription, which matters once the next prescription can be asked for.
    recent_until = timing.recent_test_fails_at(params, patient, latest.collected_at)
    next_rx = next_prescription_from(history, params, now)
    for_next_rx = max(recent_until, next_rx)
    due = [(for_next_rx, "recent")]
    if params.testing_interval is not None:
        due.append((timing.interval_test_fails_at(patient, params, latest.collected_at), "interval"))
    due_at, rule = min(due)
    state = _state_for(due_at, now)
    if state == OVERDUE and rule == "recent":
        state = MISSING  # not a late test: the next prescription needs a newer one
    was = "was due" if due_at <= now else "due"
    if rule == "interval":
        interval = timing.testing_interval_days(patient, params, min(due_at, now))
        text = f"Every {plural(interval, 'day')}: {was} {day(due_at)} (last collected {day(latest.collected_at)})."
    else:
        text = (f"Before the next prescription, which needs a recent test: {was} {day(due_at)} (last collected "
                f"{day(latest.collected_at)}).")
    if now < recent_until:
        text += f" Recent enough for a prescription until {when(recent_until)}."
    elif next_rx <= now:
        text += " A prescription now needs a newer negative test: collect one first."
    return DueItem("pregnancy_test", label, state, text, due_at)


def _every_prescription(kind, label, attestation, history, params, now, *, extra=None):
    """An attestation given for each prescription: good until it is too old or a prescription used it, and needed
    again only once the next prescription can be asked for."""
    current, why = gates.attestation_is_current(attestation, history, params, now)
    needed_from = next_prescription_from(history, params, now)
    if not current:
        if needed_from > now:
            return DueItem(kind, label, _state_for(needed_from, now),
                           f"Needed for the next prescription, from {day(needed_from)}.", needed_from)
        return DueItem(kind, label, MISSING, f"Needed for the next prescription: {why}.")
    if extra:
        return DueItem(kind, label, MISSING, extra)
    expires_at = timing.attestation_fails_at(params, attestation.attested_at) - timing.RESOLUTION
    return DueItem(kind, label, _state_for(expires_at, now),
                   f"Attested {day(attestation.attested_at)}; valid for a prescription until {day(expires_at)}.",
                   expires_at)


def _contraception(patient, history, params, now):
    # The same checks the decision makes of a contraception attestation: the methods, and before the first
    # prescription, that contraception started early enough.
    failed = [c for c in gates.check_contraception(patient, history, params, now) if not c.passed]
    extra = failed[0].message if failed and failed[0].code != "CONTRACEPTION_ATTESTED" else None
    return _every_prescription("attestation", "Contraception attestation", history.contraception, history, params,
                               now, extra=extra)


def _counseling(patient, history, params, now, counseling):
    kind, label = ("attestation", "Counseling attestation")
    attestation = history.male_counseling if counseling.kind == "male_counseling" else history.counseling
    if counseling.required == "at_enrollment":
        if attestation is None:
            return DueItem(kind, label, MISSING, "Counseling at enrollment is not on file.")
        return DueItem(kind, label, OK, f"Counseled {day(attestation.attested_at)}, at enrollment.")
    return _every_prescription(kind, label, attestation, history, params, now)


def _survey(patient, history, params, now):
    rule = params.surveys.get(patient.risk_category)
    if rule is None:
        return None
    label = params.survey_label.capitalize()
    if patient.therapy_started_at is None and not rule.before_first_prescription:
        return None
    survey = history.latest_survey
    if rule.every is None:
        if survey and timing.counts_for_next_prescription(survey.completed_at, history, now):
            return DueItem("survey", label, OK, f"Completed {day(survey.completed_at)} for the next prescription.")
        needed_from = next_prescription_from(history, params, now)
        if needed_from > now:
            return DueItem("survey", label, _state_for(needed_from, now),
                           f"Needed before the next prescription, from {day(needed_from)}.", needed_from)
        return DueItem("survey", label, MISSING, "Needed before each prescription; none since the last one.")
    due_at = timing.survey_fails_at(params, patient, survey.completed_at if survey else None)
    if due_at is None:  # before the first prescription, with none on file
        return DueItem("survey", label, MISSING,
                       f"Needed before the first prescription, then every {plural(rule.every, 'day')}.")
    return DueItem("survey", label, _state_for(due_at, now),
                   f"Every {plural(rule.every, 'day')}: due {day(due_at)}.", due_at)


def _authorization(history, now):
    open_rx = history.open_prescription
    if open_rx is None or open_rx.expires_at <= now:
        return None
    soon = open_rx.expires_at - now <= reminders.AUTHORIZATION_WARNING
    return DueItem(
        "authorization", "Open authorization", DUE_SOON if soon else OK,
        f"{authorization_number_display(open_rx.authorization_number)} lapses {when(open_rx.expires_at)} if not "
        "dispensed.",
        open_rx.expires_at,
    )


def patient_outlook(*, patient: gates.PatientFact, history: gates.PatientHistory, params, now: datetime) -> list:
    """The items a prescriber should see for one patient, the most pressing first. An unknown rule set (params
    None), a category the rule set does not have, or an enrollment that is not active is one item saying so:
    nothing else can be judged."""
    if params is None:
        return [DueItem("rule_set", "Rule set", MISSING, "No valid rule set is in force; nothing can be authorized.")]
    if patient.status != "active":
        return [DueItem("enrollment", "Enrollment", MISSING,
                        f"The enrollment is {patient.status}; nothing can be prescribed.")]
    category = params.category(patient.risk_category)
    if category is None:
        return [DueItem("enrollment", "Risk category", MISSING,
                        f"{patient.risk_category} is not a category of the rule set in force; sign a new agreement.")]
    items = []
    if category.can_get_pregnant:
        before = patient.therapy_started_at is None
        items.append((_before_therapy if before else _during_therapy)(patient, history, params, now))
        items.append(_contraception(patient, history, params, now))
    counseling = params.counseling.get(patient.risk_category)
    if counseling is not None:
        items.append(_counseling(patient, history, params, now, counseling))
    survey = _survey(patient, history, params, now)
    if survey:
        items.append(survey)
    authorization = _authorization(history, now)
    if authorization:
        items.append(authorization)
    order = {OVERDUE: 0, MISSING: 1, DUE_SOON: 2, OK: 3}
    return sorted(items, key=lambda item: order[item.state])
