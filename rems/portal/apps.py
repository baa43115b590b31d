from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "rems.portal"
    label = "portal"
    verbose_name = "Web portal"
