import logging

from django.apps import AppConfig
from django.conf import settings


class RemsConfig(AppConfig):
    name = "rems"
    verbose_name = "REMS program"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        if settings.REMS_ENV == "development":
            logging.getLogger("rems").warning(
                "DEVELOPMENT MODE (REMS_ENV=development): development secret key, local hosts only; never use with real data."
            )
