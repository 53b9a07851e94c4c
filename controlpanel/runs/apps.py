from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "controlpanel.runs"
    label = "runs"
