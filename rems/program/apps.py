from django.apps import AppConfig


class ProgramConfig(AppConfig):
    """The program's records. Its label is `rems`: the tables (`rems_*`), the migrations and the admin site's
    URLs (`/admin/rems/...`) keep the name they have always had."""

    name = "rems.program"
    label = "rems"
    verbose_name = "REMS program"
    default_auto_field = "django.db.models.BigAutoField"
