from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "controlpanel.evidence"
    label = "evidence"
