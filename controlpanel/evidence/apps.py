from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "controlpanel.evidence"
    label = "evidence"

    def ready(self):
        from controlpanel.runs.signals import attempt_finished

        from . import receivers

        attempt_finished.connect(receivers.on_attempt_finished, dispatch_uid="evidence-snapshots")
