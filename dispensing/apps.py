from django.apps import AppConfig


class DispensingConfig(AppConfig):
    name = "dispensing"
    default_auto_field = "django.db.models.BigAutoField"
