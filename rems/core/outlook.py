"""What is due and what is missing for a patient, as the prescriber's patient list shows it.

Pure, like the gate engine it leans on: it takes the facts a prescription decision would take and `now`, and
says, item by item, what the next prescription will need and by when. The decision itself is still made by
`gates.prescription_decide`; this only looks ahead so that nobody finds out at the last minute.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import gates
from .wording import day, plural, when

OK = "ok"
DUE_SOON = "due_soon"
OVERDUE = "overdue"
MISSING = "missing"

# How far ahead an item counts as "due soon": the reminders go out two days before a test is due.
SOON = timedelta(days=2)
AUTHORIZATION_SOON = timedelta(hours=24)


@dataclass(frozen=True)
class DueItem:
    kind: str  # pregnancy_test, attestation, survey, authorization
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


def _pregnancy_test(patient, history, params, now):
    negatives = gates.qualifying_negatives(history.tests, params)
    latest = negatives[0] if negatives else None
    if patient.therapy_started_at is None:
        # FRP before the first prescription: one test 10 to 14 days before it, the second within 24 hours before.
        recent = [t for t in negatives if t.collected_at >= now - timedelta(days=params.first_test_max_days_before)]
        if not recent:
            return DueItem(
                "pregnancy_test", "Pregnancy tests", MISSING,
                f"Before the first prescription: a negative test {params.first_test_min_days_before} to "
                f"{params.first_test_max_days_before} days before it, and a second within "
                f"{params.second_test_max_hours_before} hours before it.",
            )
        first = recent[-1]  # the oldest still in the window: the one that can count as the first test
        ready_at = first.collected_at + timedelta(days=params.first_test_min_days_before)
        deadline = first.collected_at + timedelta(days=params.first_test_max_days_before)
        if now < ready_at:
            text = (f"First test collected {day(first.collected_at)}. Collect the second test and prescribe "
                    f"between {day(ready_at)} and {day(deadline)}.")
            return DueItem("pregnancy_test", "Pregnancy tests", OK, text, ready_at)
        second_window = timedelta(hours=params.second_test_max_hours_before)
        second = recent[0] if recent[0].collected_at >= now - second_window else None
        if second is not None:
            ready_until = min(deadline, second.collected_at + second_window)
            return DueItem("pregnancy_test", "Pregnancy tests", OK,
                           f"Both tests on file ({day(first.collected_at)} and "
                           f"{day(second.collected_at)}): ready to prescribe until {when(ready_until)}.",
                           ready_until)
        text = (f"First test collected {day(first.collected_at)}. Collect the second test within "
                f"{params.second_test_max_hours_before} hours before prescribing, by {day(deadline)}.")
        return DueItem("pregnancy_test", "Pregnancy tests", _state_for(deadline, now), text, deadline)
    interval = gates.testing_interval_days(patient, params, now)
    if latest is None:
        return DueItem("pregnancy_test", "Next pregnancy test", OVERDUE,
                       f"No negative test in the last {params.pregnancy_test_lookback_days} days; one is due now.")
    due_at = latest.collected_at + timedelta(days=interval)
    state = _state_for(due_at, now)
    was = "was due" if state == OVERDUE else "due"
    text = (f"Every {plural(interval, 'day')}: {was} {day(due_at)} "
            f"(last collected {day(latest.collected_at)}).")
    # A prescription also needs a negative test from the days just before it (PREGNANCY_TEST_RECENT): once the
    # next fill is possible, a test older than that is missing, whatever the testing schedule says.
    recent_until = latest.collected_at + timedelta(days=params.authorization_validity_days_reproductive)
    if now < recent_until:
        text += f" Recent enough for a prescription until {when(recent_until)}."
    elif gates.check_next_fill(history, params, now).passed and state != OVERDUE:
        state = MISSING
        text += (f" A prescription now needs a negative test from the last "
                 f"{plural(params.authorization_validity_days_reproductive, 'day')}: collect one first.")
    return DueItem("pregnancy_test", "Next pregnancy test", state, text, due_at)


def _attestation(label, attestation, history, params, now, patient=None):
    current, why = gates.attestation_is_current(attestation, history, params, now)
    if not current:
        return DueItem("attestation", label, MISSING, f"Needed for the next prescription: {why}.")
    if patient is not None:
        # The same checks the decision makes of a contraception attestation: the methods, and before the first
        # prescription, that contraception started early enough.
        failed = [c for c in gates.check_contraception(patient, history, params, now) if not c.passed]
        if failed:
            return DueItem("attestation", label, MISSING, failed[0].message)
    expires_at = attestation.attested_at + timedelta(days=params.attestation_max_age_days)
    return DueItem("attestation", label, _state_for(expires_at, now),
                   f"Attested {day(attestation.attested_at)}; valid for a prescription until "
                   f"{day(expires_at)}.", expires_at)


def _survey(patient, history, params, now):
    if patient.therapy_started_at is None:
        return None
    survey = history.latest_survey
    if patient.risk_category in params.survey_every_prescription_categories:
        previous = history.previous_prescription_issued_at
        if survey and (previous is None or survey.completed_at > previous) and survey.completed_at <= now:
            return DueItem("survey", "Patient survey", OK,
                           f"Completed {day(survey.completed_at)} for the next prescription.")
        return DueItem("survey", "Patient survey", MISSING, "Needed before each prescription; none since the last one.")
    interval = timedelta(days=params.survey_interval_days[patient.risk_category])
    last = survey.completed_at if survey else patient.therapy_started_at
    due_at = last + interval
    return DueItem("survey", "Patient survey", _state_for(due_at, now),
                   f"Every {plural(interval.days, 'day')}: due {day(due_at)}.", due_at)


def _authorization(history, now):
    open_rx = history.open_prescription
    if open_rx is None or open_rx.expires_at <= now:
        return None
    soon = open_rx.expires_at - now <= AUTHORIZATION_SOON
    return DueItem(
        "authorization", "Open authorization", DUE_SOON if soon else OK,
        f"{open_rx.authorization_number} lapses {when(open_rx.expires_at)} if not dispensed.",
        open_rx.expires_at,
    )


def patient_outlook(*, patient: gates.PatientFact, history: gates.PatientHistory, params, now: datetime) -> list:
    """The items a prescriber should see for one patient, the most pressing first. An unknown rule set (params
    None) or an enrollment that is not active is one item saying so: nothing else can be judged."""
    if params is None:
        return [DueItem("rule_set", "Rule set", MISSING, "No valid rule set is in force; nothing can be authorized.")]
    if patient.status != "active":
        return [DueItem("enrollment", "Enrollment", MISSING,
                        f"The enrollment is {patient.status}; nothing can be prescribed.")]
    items = []
    if patient.risk_category in params.reproductive_potential_categories:
        items.append(_pregnancy_test(patient, history, params, now))
        items.append(_attestation("Contraception attestation", history.contraception, history, params, now,
                                  patient=patient))
    elif patient.risk_category in params.male_categories:
        items.append(_attestation("Counseling attestation", history.male_counseling, history, params, now))
    survey = _survey(patient, history, params, now)
    if survey:
        items.append(survey)
    authorization = _authorization(history, now)
    if authorization:
        items.append(authorization)
    order = {OVERDUE: 0, MISSING: 1, DUE_SOON: 2, OK: 3}
    return sorted(items, key=lambda item: order[item.state])
