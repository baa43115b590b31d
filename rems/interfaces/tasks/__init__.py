"""Celery tasks: thin, each calling one service that takes `now` and works on due rows only, so running a task
twice, or two beats by mistake, changes nothing more. Celery finds this package as the `tasks` module of the
interfaces app; the schedule is `CELERY_BEAT_SCHEDULE` in the settings."""

from .compliance_log import log_checkpoint  # noqa: F401
from .notifications import deliver_due, deliver_notification, plan_reminders  # noqa: F401
from .sweeps import expire_lapsed  # noqa: F401
