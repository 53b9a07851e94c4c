from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "controlpanel.safety"
    label = "safety"
