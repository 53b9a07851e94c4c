from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "controlpanel.support"
    label = "support"
    verbose_name = "Support: membership lookups, contacts and escalation"
