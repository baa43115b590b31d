from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "rems.interfaces.portal"
    label = "portal"
    verbose_name = "Web portal"
