import logging

from django.apps import AppConfig
from django.conf import settings


class InterfacesConfig(AppConfig):
    """The interfaces, installed as one app so that Django and Celery find them where they look: the admin
    site's registrations (`admin`), the Celery tasks (`tasks`), the management commands and the templates of
    the admin site's own pages. The portal is an app of its own (`rems.interfaces.portal`)."""

    name = "rems.interfaces"
    label = "interfaces"
    verbose_name = "Interfaces"

    def ready(self):
        from .api import schema  # noqa: F401 - registers the API key scheme with the OpenAPI generator

        if settings.REMS_ENV == "development":
            logging.getLogger("rems").warning(
                "DEVELOPMENT MODE (REMS_ENV=development): development secret key, local hosts only; never use with real data."
            )
