"""Each user sees their own notifications in the app, and nobody else's."""

from datetime import timedelta

import pytest

from rems.program.models import Notification

from .flows import enroll, record_test

pytestmark = pytest.mark.django_db


def test_an_administrator_reads_the_alert_of_a_positive_test(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(hours=1), result="positive")

    status, page = api.get("/api/v1/notifications/?unread=true", as_=world["admin"])

    assert status == 200 and [n["kind"] for n in page["results"]] == ["positive_pregnancy_test"]
    alert = page["results"][0]
    assert alert["priority"] == "high" and patient_id in alert["body"]
    status, read = api.post(f"/api/v1/notifications/{alert['id']}/read", as_=world["admin"])
    assert status == 200 and read["read_at"]
    assert api.get("/api/v1/notifications/?unread=true", as_=world["admin"])[1]["results"] == []


def test_nobody_sees_another_users_notifications(api, world):
    token = world["ours"].tokens["prescriber"]
    patient_id = enroll(api, token)
    record_test(api, token, patient_id, timedelta(hours=1), result="positive")
    alert = Notification.objects.get(recipient=world["admin_user"])

    assert api.get("/api/v1/notifications/", as_=world["auditor"])[1]["results"] == []
    assert api.post(f"/api/v1/notifications/{alert.pk}/read", as_=world["ours"].tokens["pharmacist"])[0] == 404
    assert api.post(f"/api/v1/notifications/{alert.pk}/read", as_=world["auditor"])[0] == 403  # changes nothing
