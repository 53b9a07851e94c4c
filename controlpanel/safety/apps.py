from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "controlpanel.safety"
    label = "safety"
    verbose_name = "Safety: preflight, rehearsal, rollback"
