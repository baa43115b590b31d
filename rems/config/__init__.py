"""The wiring: settings, URLs, the WSGI entry point and the Celery app (`celery -A rems.config`). The Celery app
is loaded with the settings, so that every process that runs Django publishes to the configured broker."""

from .celery import app as celery_app

__all__ = ["celery_app"]
