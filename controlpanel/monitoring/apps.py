from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "controlpanel.monitoring"
    label = "monitoring"
