"""Reminders and alerts are delivered once, by a real worker over the real Redis, whatever fails on the way."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role, User
from rems.config.celery import app
from rems.interfaces.tasks import notifications as tasks
from rems.program.models import Notification
from rems.program.notifications import notification_create
from tests.api.flows import enroll, record_test
from tests.conftest import Api
from tests.factories import UserFactory

from .conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def administrators(world):
    """Every administrator gets the alert; those with an email address (these two) get it by email too."""
    return [UserFactory(role=Role.ADMIN, email=f"admin{i}@example.org") for i in range(2)]


def _admin_count():
    return User.objects.filter(role=Role.ADMIN).count()


def _one_reminder(world):
    prescriber = world["ours"].users["prescriber"]
    prescriber.email = "office@example.org"
    prescriber.save(update_fields=["email"])
    now = timezone.now()
    [notification_id] = notification_create(
        recipients=[prescriber], kind="certification_expiring_7", subject_type="certification", subject_id="c-1",
        due_on=now.date(), send_at=now, title="Certification ends soon", body="Renew it.", now=now,
    )
    return Notification.objects.get(pk=notification_id)


def _sent(notification_ids):
    return Notification.objects.filter(pk__in=notification_ids, state="sent").count() == len(notification_ids)


def test_an_alert_created_by_an_api_call_is_delivered_once(world, administrators, worker_factory):
    worker = worker_factory().start()
    api = Api()
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)

    record_test(api, token, patient_id, timedelta(hours=1), result="positive")

    alerts = list(Notification.objects.filter(kind="positive_pregnancy_test").values_list("pk", flat=True))
    assert len(alerts) == _admin_count() == len(administrators) + 1
    assert wait_for(lambda: _sent(alerts))
    assert wait_for(lambda: len(worker.emails()) == len(administrators))
    tasks.deliver_due.apply_async(queue=worker.queues[0])  # a sweep afterwards sends nothing more
    assert not wait_for(lambda: len(worker.emails()) > len(administrators), timeout=3)


def test_the_same_task_delivered_twice_sends_one_email(world, worker_factory):
    notification = _one_reminder(world)
    worker = worker_factory()

    for _ in range(2):
        tasks.deliver_notification.apply_async(args=[str(notification.pk)], queue=worker.queues[0])
    worker.start()

    assert wait_for(lambda: _sent([notification.pk]))
    assert not wait_for(lambda: len(worker.emails()) > 1, timeout=3)
    assert len(worker.emails()) == 1


def test_a_worker_killed_while_sending_leaves_the_reminder_to_be_sent_once(world, worker_factory, tmp_path):
    notification = _one_reminder(world)
    marker = tmp_path / "sending"
    slow = worker_factory(EMAIL_BACKEND="tests.support.slow_email.EmailBackend", SLOW_EMAIL_MARKER=str(marker))
    tasks.deliver_notification.apply_async(args=[str(notification.pk)], queue=slow.queues[0])
    slow.start()
    assert wait_for(marker.exists, timeout=30)

    slow.kill()  # in the middle of sending

    assert Notification.objects.get(pk=notification.pk).state == "pending"
    assert slow.emails() == []
    fresh = worker_factory().start()
    tasks.deliver_due.apply_async(queue=fresh.queues[0])
    assert wait_for(lambda: _sent([notification.pk]))
    assert len(fresh.emails()) == 1


def _use_broker(url):
    """Point this process's Celery app at another broker (its connection and producer pools are rebuilt)."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def test_an_alert_created_while_redis_is_down_is_delivered_once_it_is_back(
        world, administrators, worker_factory, private_redis, settings):
    original_broker = app.conf.broker_url
    private_redis.start()
    settings.CELERY_BROKER_URL = private_redis.url
    _use_broker(private_redis.url)
    try:
        private_redis.stop()
        api = Api()
        token = world["ours"].tokens["prescriber"]
        patient_id = enroll(api, token)

        # The decision does not wait for the broker: the test is recorded and the alerts stored.
        record_test(api, token, patient_id, timedelta(hours=1), result="positive")
        alerts = list(Notification.objects.filter(kind="positive_pregnancy_test").values_list("pk", flat=True))
        assert len(alerts) == _admin_count()
        assert Notification.objects.filter(pk__in=alerts, state="sent").count() == 0

        private_redis.start()
        worker = worker_factory(broker_url=private_redis.url).start()
        tasks.deliver_due.apply_async(queue=worker.queues[0])
        assert wait_for(lambda: _sent(alerts))
        assert len(worker.emails()) == len(administrators)
    finally:
        _use_broker(original_broker)
