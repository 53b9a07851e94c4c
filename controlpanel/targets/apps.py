from django.apps import AppConfig


class TargetsConfig(AppConfig):
    name = "controlpanel.targets"
    label = "targets"
