from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "controlpanel.support"
    label = "support"
