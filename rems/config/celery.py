import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rems.config.settings")

app = Celery("rems")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The service's app in every thread, not only the one that created it: the thread that publishes new alerts'
# tasks (rems/program/notifications.py) publishes with these settings and to this broker.
app.set_default()
