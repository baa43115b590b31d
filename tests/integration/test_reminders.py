"""Reminders and expiries with the clock moved forward: what is due, when, to whom, and only once."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from dispensing import dispenses, prescriptions, reminders, sweeps
from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.program import notifications, records
from rems.program.models import Notification, Program
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture
def office(world):
    return world["ours"].users["prescriber"]


def _patient(world, category="FRP_ADULT", *, started, irregular=False):
    program = Program.objects.get(slug="pomalidomide")
    return PatientFactory(prescriber=world["ours"].prescriber, program=program, risk_category=category,
                          therapy_started_at=started, irregular_cycles=irregular)


def _test(office, patient, at):
    records.pregnancy_test_record(actor=office, patient=patient, collected_at=at, result="negative",
                                   sensitivity_miu_ml=25, now=at)


def _plan_daily(start, days):
    for day in range(days + 1):
        reminders.plan_patient_reminders(now=start + day * DAY + timedelta(hours=12))


def _due_dates(kind, patient):
    return sorted(set(Notification.objects.filter(kind=kind, subject_id=str(patient.pk)).values_list("due_on", flat=True)))


@pytest.mark.parametrize("irregular, later_interval", [(False, 28), (True, 14)])
def test_frp_test_reminders_follow_weekly_then_the_cycle_interval(world, office, irregular, later_interval):
    start = timezone.now() - timedelta(days=120)
    patient = _patient(world, started=start, irregular=irregular)
    # The patient is tested whenever a test is due: weekly for 4 weeks, then every 4 or 2 weeks. A test counts
    # for the interval in force when it runs out: the test of week 4 (day 28 less two hours) runs out after the
    # weekly weeks, so it counts for the longer interval.
    test_at = start - timedelta(hours=2)
    expected = []
    for _ in range(6):
        _test(office, patient, test_at)
        weekly = test_at + timedelta(days=7) < start + timedelta(weeks=4)
        test_at += timedelta(days=7 if weekly else later_interval)
        expected.append(test_at.date())
        _plan_daily(test_at - timedelta(days=3), 3)

    assert _due_dates("pregnancy_test_due", patient) == expected
    assert _due_dates("pregnancy_test_due_soon", patient) == expected
    soon = Notification.objects.filter(kind="pregnancy_test_due_soon", subject_id=str(patient.pk))
    assert all(n.send_at.date() == n.due_on - timedelta(days=2) and "pregnancy test" in n.body for n in soon)
    ours = world["ours"].users
    assert {n.recipient for n in soon} == {ours["prescriber"], ours["delegate"]}


def test_blood_count_reminders_are_weekly_for_8_weeks_then_monthly(world):
    start = timezone.now() - timedelta(days=150)
    patient = _patient(world, "MALE_ADULT", started=start)

    _plan_daily(start, 140)

    weekly = [(start + timedelta(weeks=k)).date() for k in range(1, 9)]
    monthly = [(start + timedelta(weeks=8) + timedelta(days=30 * m)).date() for m in range(1, 3)]
    assert _due_dates("blood_count_due", patient) == weekly + monthly


def test_planning_again_creates_nothing_new(world, office):
    start = timezone.now() - timedelta(days=10)
    patient = _patient(world, started=start)
    _test(office, patient, start - timedelta(hours=2))
    now = start + timedelta(days=7)
    reminders.plan_patient_reminders(now=now)
    count = Notification.objects.count()

    reminders.plan_patient_reminders(now=now)
    reminders.plan_patient_reminders(now=now + timedelta(hours=3))

    assert Notification.objects.count() == count > 0


def test_an_undispensed_authorization_warns_the_prescriber_and_the_pharmacy_24_hours_before(world, office):
    ours = world["ours"]
    program = Program.objects.get(slug="pomalidomide")
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    issued = timezone.now() - timedelta(days=29, hours=1)  # an FNRP authorization lasts 30 days
    _, _, rx = prescriptions.prescription_authorize(actor=office, patient=patient, ndc="59572-0504-21", quantity=21,
                                                 days_supply=28, now=issued)
    dispenses.dispense_authorization_request(
        actor=ours.users["pharmacist"], pharmacy=ours.pharmacy, authorization_number=rx.authorization_number,
        date_of_birth=patient.date_of_birth, ndc="59572-0504-21", quantity=21, days_supply=28,
        now=timezone.now() - timedelta(hours=1),
    )

    reminders.plan_expiry_reminders(now=timezone.now())

    warned = set(Notification.objects.filter(kind="authorization_expiring", subject_id=str(rx.pk))
                 .values_list("recipient__role", flat=True))
    assert warned == {"prescriber", "delegate", "pharmacist", "pharmacy_manager"}
    assert Notification.objects.filter(kind="rda_expiring").count() == 0  # the RDA has 23 hours left


def test_certifications_warn_30_and_7_days_before_their_end(world):
    certification = world["ours"].prescriber.certifications.get()
    end = certification.expires_at

    reminders.plan_expiry_reminders(now=end - timedelta(days=31))
    assert not Notification.objects.filter(subject_id=str(certification.pk)).exists()
    reminders.plan_expiry_reminders(now=end - timedelta(days=29))
    reminders.plan_expiry_reminders(now=end - timedelta(days=6))

    kinds = set(Notification.objects.filter(subject_id=str(certification.pk)).values_list("kind", flat=True))
    assert kinds == {"certification_expiring_30", "certification_expiring_7"}


def test_a_positive_test_alerts_every_administrator_at_once(world, office):
    admins = [world["admin_user"], UserFactory(role=Role.ADMIN)]
    patient = _patient(world, started=None)

    records.pregnancy_test_record(actor=office, patient=patient, collected_at=timezone.now() - timedelta(hours=1),
                                   result="positive", sensitivity_miu_ml=25, now=timezone.now())

    alerts = Notification.objects.filter(kind="positive_pregnancy_test")
    assert {a.recipient for a in alerts} == set(admins)
    assert all(a.priority == "high" and a.send_at <= timezone.now() for a in alerts)
    assert patient.pregnancy_reports.count() == 1


def test_expiries_happen_at_the_end_of_validity_with_a_log_entry(world, office):
    ours = world["ours"]
    program = Program.objects.get(slug="pomalidomide")
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
    issued = timezone.now() - timedelta(days=40)
    _, _, rx = prescriptions.prescription_authorize(actor=office, patient=patient, ndc="59572-0504-21", quantity=21,
                                                 days_supply=28, now=issued)
    _, _, rda = dispenses.dispense_authorization_request(
        actor=ours.users["pharmacist"], pharmacy=ours.pharmacy, authorization_number=rx.authorization_number,
        date_of_birth=patient.date_of_birth, ndc="59572-0504-21", quantity=21, days_supply=28, now=issued,
    )

    sweeps.expire_lapsed(now=rda.expires_at - timedelta(seconds=1))
    assert DispenseAuthorization.objects.get(pk=rda.pk).status == "approved"
    sweeps.expire_lapsed(now=rda.expires_at)  # 24 hours after it was approved
    assert DispenseAuthorization.objects.get(pk=rda.pk).status == "expired"
    assert ComplianceLogEntry.objects.filter(action="dispense_authorization.expire", object_id=str(rda.pk)).exists()

    sweeps.expire_lapsed(now=rx.expires_at - timedelta(seconds=1))
    assert Prescription.objects.get(pk=rx.pk).status == "issued"
    sweeps.expire_lapsed(now=rx.expires_at)  # 30 days after issue for FNRP
    assert Prescription.objects.get(pk=rx.pk).status == "expired"
    assert ComplianceLogEntry.objects.filter(action="prescription.expire", prescription_id=rx.pk).exists()


def test_the_expiry_sweep_works_in_bounded_batches(world, office):
    program = Program.objects.get(slug="pomalidomide")
    issued = timezone.now() - timedelta(days=31)
    for _ in range(25):
        patient = PatientFactory(prescriber=world["ours"].prescriber, program=program,
                                 risk_category="FNRP_ADULT")
        prescriptions.prescription_authorize(actor=office, patient=patient, ndc="59572-0504-21", quantity=21,
                                          days_supply=28, now=issued)

    with CaptureQueriesContext(connection) as queries:
        counts = sweeps.expire_lapsed(now=timezone.now(), batch_size=10)

    assert counts["prescriptions"] == 25
    batch_selects = [q["sql"] for q in queries.captured_queries
                     if "SKIP LOCKED" in q["sql"] and "dispensing_prescription" in q["sql"]
                     and "LIMIT 10" in q["sql"]]
    # One batch of RDAs (none lapsed), then authorizations: 10 + 10 + 5, the last short, so the sweep ends.
    assert len(batch_selects) == 1 + 3
    assert sweeps.expire_lapsed(now=timezone.now(), batch_size=10)["prescriptions"] == 0


def test_a_survey_every_182_days_is_reminded_182_days_after_the_last(world, office):
    start = timezone.now() - timedelta(days=200)
    patient = _patient(world, "FNRP_ADULT", started=start)
    records.survey_record(actor=office, patient=patient, completed_at=start + timedelta(days=5), now=start + DAY * 5)

    _plan_daily(start, 195)

    assert _due_dates("survey_due", patient)[0] == (start + timedelta(days=5 + 182)).date()


def test_a_survey_before_each_prescription_is_reminded_when_the_next_one_can_be_asked_for(world, office):
    ours = world["ours"]
    patient = _patient(world, "MALE_ADULT", started=None)
    issued = timezone.now() - timedelta(days=27)
    records.attestation_record(actor=office, patient=patient, kind="male_counseling", now=issued)
    _, _, rx = prescriptions.prescription_authorize(actor=office, patient=patient, ndc="59572-0504-21", quantity=28,
                                                    days_supply=28, now=issued)
    _, _, rda = dispenses.dispense_authorization_request(
        actor=ours.users["pharmacist"], pharmacy=ours.pharmacy, authorization_number=rx.authorization_number,
        date_of_birth=patient.date_of_birth, ndc="59572-0504-21", quantity=28, days_supply=28, now=issued)
    dispenses.dispense_confirm(actor=ours.users["pharmacist"], rda=rda, counseling_confirmed=True,
                               medication_guide_provided=True, now=issued)
    params = Program.objects.get(slug="pomalidomide").rule_sets.get().parameters
    next_fill = issued + timedelta(days=28 - params["next_fill_max_remaining_days"])

    reminders.plan_patient_reminders(now=next_fill - timedelta(microseconds=1))
    assert _due_dates("survey_due", patient) == []
    reminders.plan_patient_reminders(now=next_fill)
    [survey_due] = Notification.objects.filter(kind="survey_due", subject_id=str(patient.pk)).distinct("send_at")
    assert survey_due.send_at == next_fill and "before each prescription" in survey_due.body


def test_a_failing_mail_server_is_retried_with_backoff_then_given_up(world, office, settings):
    settings.EMAIL_BACKEND = "tests.support.failing_email.EmailBackend"
    office.email = "office@example.org"
    office.save(update_fields=["email"])
    now = timezone.now()
    [notification_id] = notifications.notification_create(
        recipients=[office], kind="certification_expiring_7", subject_type="certification", subject_id="c",
        due_on=now.date(), send_at=now, title="t", body="b", now=now,
    )

    waits = []
    moment = now
    for _ in range(notifications.MAX_ATTEMPTS):
        assert notifications.deliver_due(now=moment)["sent"] == 0
        notification = Notification.objects.get(pk=notification_id)
        waits.append(notification.next_attempt_at - moment)
        moment = notification.next_attempt_at

    assert notification.state == "failed" and notification.attempts == notifications.MAX_ATTEMPTS
    assert "unreachable" in notification.last_error
    assert waits == sorted(waits) and waits[0] == timedelta(minutes=2) and waits[-1] == timedelta(minutes=60)
    assert notifications.deliver_due(now=moment + timedelta(days=1)) == {"sent": 0, "retry": 0, "failed": 0,
                                                                         "skipped": 0}
