"""What a patient in therapy will be reminded of, and when: pure, from the same time rules as the gates
(`timing`). Each reminder is due at exactly the moment the check it reminds of starts failing, and says which
rule it is for; the planner (`dispensing.reminders`) stores them as notifications for the prescriber's office.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import timing
from .wording import day, plural

# A pregnancy test is reminded of twice: this long before it is due, and when it is due. The patient list calls
# an item "due soon" from the same moment.
DUE_SOON = timedelta(days=2)
# An authorization not yet dispensed is reminded of this long before it lapses; the patient list calls it
# "due soon" from the same moment.
AUTHORIZATION_WARNING = timedelta(hours=24)


@dataclass(frozen=True)
class Due:
    kind: str  # pregnancy_test, survey, or a clinical reminder's kind (blood_count)
    due_at: datetime  # the first moment the check it reminds of fails (a clinical reminder: when it is due)
    check: str  # the check code it reminds of ("" for a clinical reminder, which is no gate)
    rule: str  # which rule it is for, in words
    label: str = "Pregnancy test"  # what is due, as a title says it


def _pregnancy_test(patient, history, params):
    negatives = timing.qualifying_negatives(history.tests, params, params.test_settings_during_therapy)
    if not negatives:
        return None  # no test to count from: the patient list shows it overdue; nothing to plan
    latest = negatives[0].collected_at
    candidates = []
    if params.testing_interval is not None:
        fails_at = timing.interval_test_fails_at(patient, params, latest)
        interval = timing.interval_test_days(patient, params, latest)
        candidates.append(Due("pregnancy_test", fails_at, "PREGNANCY_TEST_INTERVAL",
                              f"the testing interval: a negative test every {plural(interval, 'day')}"))
    next_rx = timing.next_fill_from(params, history.last_dispense)
    if next_rx is not None:
        # The next prescription needs a test from its window: due when the latest one is too old and that
        # prescription can be asked for, whichever comes later.
        window = params.authorization_windows[patient.risk_category]
        fails_at = max(timing.recent_test_fails_at(params, patient, latest), next_rx)
        candidates.append(Due("pregnancy_test", fails_at, "PREGNANCY_TEST_RECENT",
                              f"the test before the next prescription: one from the last "
                              f"{plural(window.days, 'day')}"))
    return min(candidates, key=lambda due: due.due_at) if candidates else None


def _survey(patient, history, params, now):
    rule = params.surveys.get(patient.risk_category)
    if rule is None:
        return None
    label = params.survey_label
    if rule.every is not None:
        survey = history.latest_survey
        fails_at = timing.survey_fails_at(params, patient, survey.completed_at if survey else None)
        return Due("survey", fails_at, "SURVEY_COMPLETED", f"the {label} every {plural(rule.every, 'day')}",
                   label.capitalize())
    survey = history.latest_survey
    if survey is not None and timing.counts_for_next_prescription(survey.completed_at, history, now):
        return None  # done for the next prescription
    next_rx = timing.next_fill_from(params, history.last_dispense)
    if next_rx is None:
        return None
    return Due("survey", next_rx, "SURVEY_COMPLETED", f"the {label} before each prescription", label.capitalize())


def _clinical(patient, params, now):
    dues = []
    for reminder in params.clinical_reminders:
        point = timing.clinical_due_points(reminder, patient.therapy_started_at, now)
        if point is not None:
            dues.append(Due(reminder.kind, point, "",
                            f"{reminder.label.lower()} weekly for the first {reminder.weekly_for_weeks} weeks of "
                            f"therapy, then every {plural(reminder.then_every_days, 'day')}", reminder.label))
    return dues


def patient_dues(*, patient, history, params, now):
    """The reminders of a patient in therapy (an active enrollment, therapy started) under `params`: the next
    pregnancy test (whichever rule binds first), the survey, and the clinical reminders due by `now`."""
    if params is None or patient.status != "active" or patient.therapy_started_at is None:
        return []
    category = params.category(patient.risk_category)
    if category is None:
        return []
    dues = []
    if category.can_get_pregnant:
        dues.append(_pregnancy_test(patient, history, params))
    dues.append(_survey(patient, history, params, now))
    dues += _clinical(patient, params, now)
    return [due for due in dues if due is not None]


def due_text(due):
    """A reminder's sentence: what is due, on which day, and under which rule."""
    what = {"pregnancy_test": "the next pregnancy test", "survey": "the survey"}.get(due.kind, due.kind.replace("_", " "))
    return f"{what} is due on {day(due.due_at)} ({due.rule})."
