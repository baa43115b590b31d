"""Every time rule of a program, in one place: from a rule set, what is on a patient's record and a moment, until
when each requirement holds, when the next one is due, and until when an authorization holds.

The gates (`gates`), what is due for a patient (`outlook`), the reminders (`reminders`) and the portal's texts
all ask here; none of them repeats a rule or a number. Each function answers with the first moment a check
fails (`*_fails_at`): the check passes before it and fails from it on. So a reminder due "when the test is due"
is due at exactly the moment the gate starts refusing.

Windows that hold through their last instant (a test "within 28 days", an attestation "30 days old or less") fail
one clock tick after it: `RESOLUTION`, the microsecond of the clock. All times are UTC.
"""

from datetime import datetime, time, timedelta, timezone

# The clock's resolution: a window that holds through a moment fails at the next one.
RESOLUTION = timedelta(microseconds=1)


def calendar_zones(params, time_zone):
    """Where calendar days are counted for a patient: the patient's own time zone when it is one of the program's
    (`calendar_day_time_zones`), else all of the program's."""
    zones = params.calendar_day_time_zones
    return tuple(zone for zone in zones if zone.key == time_zone) or zones


def calendar_day_end(moment, days, zones):
    """The end of day `days`, counting the day of `moment` as day 1: the midnight that starts day `days` + 1, where
    the day was lived. With several time zones (the patient's is not known), each may put `moment` on another
    date; the window ends at the earliest of their ends, so that it never lasts longer than the rule allows
    wherever the test was collected."""
    return min(
        datetime.combine(moment.astimezone(zone).date() + timedelta(days=days), time.min, tzinfo=zone)
        for zone in zones
    ).astimezone(timezone.utc)


def window_end(params, window, start, time_zone=""):
    """The moment an authorization window opened at `start` closes (it holds before, not at, this moment)."""
    if window.counting == "calendar_days":
        return calendar_day_end(start, window.days, calendar_zones(params, time_zone))
    return start + timedelta(days=window.days)


# --- Pregnancy tests ----------------------------------------------------------------------------------------------
def qualifying_negatives(tests, params, settings=None):
    """The negative tests sensitive enough to count under the rule set (and taken in one of `settings`, when
    given), the most recent first."""
    return sorted(
        (t for t in tests
         if t.result == "negative" and t.sensitivity_miu_ml <= params.pregnancy_test_max_sensitivity_miu_ml
         and (settings is None or t.setting in settings)),
        key=lambda t: t.collected_at,
        reverse=True,
    )


def testing_interval_days(patient, params, now):
    """During therapy, the days a negative test counts for at `now` under the testing interval: the initial
    interval for the first weeks of therapy, then the regular or the irregular-cycle one."""
    interval = params.testing_interval
    if now < patient.therapy_started_at + timedelta(weeks=interval.initial_weeks):
        return interval.initial_days
    return interval.irregular_days if patient.irregular_cycles else interval.regular_days


def interval_test_days(patient, params, collected_at):
    """The days of the testing interval a test collected at `collected_at` counts for (`interval_test_fails_at`)."""
    return (interval_test_fails_at(patient, params, collected_at) - RESOLUTION - collected_at).days


def interval_test_fails_at(patient, params, collected_at):
    """PREGNANCY_TEST_INTERVAL: the first moment a test collected at `collected_at` no longer counts during
    therapy. A test counts for the interval in force when it would run out: one whose initial interval ends in
    the first weeks is due then; otherwise it counts for the regular (or irregular-cycle) interval."""
    interval = params.testing_interval
    early = collected_at + timedelta(days=interval.initial_days) + RESOLUTION
    if early < patient.therapy_started_at + timedelta(weeks=interval.initial_weeks):
        return early
    days = interval.irregular_days if patient.irregular_cycles else interval.regular_days
    return collected_at + timedelta(days=days) + RESOLUTION


def recent_test_fails_at(params, patient, collected_at):
    """PREGNANCY_TEST_RECENT: the first moment a test collected at `collected_at` is too old for a prescription
    (the authorization of the patient's category, when it counts from its test, would have closed)."""
    return window_end(params, params.authorization_windows[patient.risk_category], collected_at, patient.time_zone)


def first_test_window(params, now):
    """Before the first prescription at `now`: the collection times the first of the two tests may have."""
    fewest, most = params.first_test_days_before
    return now - timedelta(days=most), now - timedelta(days=fewest)


def first_test_ready_at(params, collected_at):
    """When a test collected at `collected_at` can count as the first of the two: from `fewest` days later
    until `most` days later (inclusive), and a second test may follow from `first_tests_min_days_apart`."""
    fewest, most = params.first_test_days_before
    return collected_at + timedelta(days=fewest), collected_at + timedelta(days=most) + RESOLUTION


def second_test_fails_at(params, collected_at):
    """PREGNANCY_TEST_SECOND with an hour limit: the first moment a test is too old to be the second one."""
    if params.second_test_max_hours_before is None:
        return None
    return collected_at + timedelta(hours=params.second_test_max_hours_before) + RESOLUTION


def lockout_until(params, history, patient, latest, settings=None):
    """iPLEDGE's lockout: a test whose window closed with no prescription issued (a missed window) lets no test
    count until `missed_window_lockout_days` after it. Every negative test since the last prescription (in the
    check's settings) is considered, a test collected during a lockout included: it counts for nothing, and when
    its own window passes unused it extends the wait, so no test taken inside a lockout can lift it (failing
    closed, and bounded: only the tests of the `missed_window_lockout_days` before `latest` matter). Returns the
    moment the lockout on `latest` ends, or None when `latest` is not locked out."""
    days = params.missed_window_lockout_days
    if not days or latest is None:
        return None
    issued = history.previous_prescription_issued_at
    ends = [
        test.collected_at + timedelta(days=days)
        for test in qualifying_negatives(history.tests, params, settings)
        if (issued is None or test.collected_at > issued) and test.collected_at < latest.collected_at
        and recent_test_fails_at(params, patient, test.collected_at) <= latest.collected_at
        and latest.collected_at < test.collected_at + timedelta(days=days)
    ]
    return max(ends) if ends else None


# --- Attestations, counseling, surveys ------------------------------------------------------------------------------
def attestation_fails_at(params, attested_at):
    """An attestation counts for the next prescription through `attestation_max_age_days` after it."""
    return attested_at + timedelta(days=params.attestation_max_age_days) + RESOLUTION


def contraception_ready_on(params, started_on):
    """The first day a first prescription may be authorized, contraception having started on `started_on`."""
    return started_on + timedelta(days=params.contraception_min_days_before_first_prescription)


def counts_for_next_prescription(moment, history, now):
    """Whether a record made at `moment` (a survey before each prescription) counts for the next prescription:
    not dated after `now`, and made after the previous prescription, which used the one before."""
    previous = history.previous_prescription_issued_at
    return moment <= now and (previous is None or moment > previous)


def survey_fails_at(params, patient, latest_survey_at):
    """SURVEY_COMPLETED for a category with a survey every N days, during therapy: the first moment the latest
    survey (or, before one, the start of therapy) is too old. None for surveys before each prescription."""
    survey = params.surveys.get(patient.risk_category)
    if survey is None or survey.every is None:
        return None
    interval = timedelta(days=survey.every)
    if patient.therapy_started_at is None:
        if not survey.before_first_prescription or latest_survey_at is None:
            return None  # none needed yet, or none on file (the check fails whenever it is needed)
        return latest_survey_at + interval + RESOLUTION
    no_survey_until = patient.therapy_started_at + interval  # no survey is due before then
    if latest_survey_at is None or latest_survey_at + interval < no_survey_until:
        return no_survey_until
    return latest_survey_at + interval + RESOLUTION


# --- Prescriptions, dispenses, enrollment ---------------------------------------------------------------------------
def next_fill_from(params, last_dispense):
    """NEXT_FILL_TIMING: the first moment a new prescription may be authorized after the supply last dispensed
    (at most `next_fill_max_remaining_days` of it left)."""
    if last_dispense is None:
        return None
    supply_ends_at = last_dispense.dispensed_at + timedelta(days=last_dispense.days_supply)
    return supply_ends_at - timedelta(days=params.next_fill_max_remaining_days)


def authorization_expires_at(params, patient, *, issued_at, latest_negative_at, counseling_at):
    """Until when a prescription authorization holds: the window of the patient's category from its start (the
    latest negative test, the issue, or the latest counseling). None when that start is not on file."""
    window = params.authorization_windows[patient.risk_category]
    start = {"issue": issued_at, "latest_negative_test": latest_negative_at, "counseling": counseling_at}[window.from_]
    return window_end(params, window, start, patient.time_zone) if start is not None else None


def dispense_authorization_expires_at(params, now, authorization_expires_at):
    """An RDA holds `dispense_authorization_validity_hours`, and never beyond the authorization it draws on."""
    return min(now + timedelta(hours=params.dispense_authorization_validity_hours), authorization_expires_at)


def reenrollment_due_at(params, patient, last_dispense):
    """The first moment a patient off treatment must re-enroll: `reenrollment_after_days_off_therapy` after the
    last dispense, unless an agreement was signed since. None when the rule does not apply."""
    days = params.reenrollment_after_days_off_therapy
    if not days or last_dispense is None:
        return None
    due_at = last_dispense.dispensed_at + timedelta(days=days)
    if patient.agreement_signed_on is not None and patient.agreement_signed_on >= due_at.date():
        return None  # re-enrolled: a new agreement after the time off
    return due_at


# --- Clinical reminders (not gates) -------------------------------------------------------------------------------
def clinical_due_points(reminder, therapy_started_at, now):
    """The latest moment at or before `now` when `reminder` was due: every week for the first weeks of therapy,
    then every `then_every_days`. None before the first one."""
    elapsed = now - therapy_started_at
    weekly = timedelta(weeks=reminder.weekly_for_weeks)
    if elapsed < weekly:
        point = therapy_started_at + timedelta(weeks=int(elapsed / timedelta(weeks=1)))
    else:
        every = timedelta(days=reminder.then_every_days)
        point = therapy_started_at + weekly + every * int((elapsed - weekly) / every)
    return point if point > therapy_started_at else None
