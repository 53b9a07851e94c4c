from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "controlpanel.evidence"
    label = "evidence"

    def ready(self):
        from controlpanel.core.extensions import RUN_PANELS, RUNBOOK_SUBCOMMANDS, register
        from controlpanel.runs.signals import attempt_finished

        from . import cli, panels, receivers

        attempt_finished.connect(receivers.on_attempt_finished, dispatch_uid="evidence-snapshots")
        register(RUN_PANELS, panels.run_panel)
        RUNBOOK_SUBCOMMANDS["report"] = (cli.add_arguments, cli.handle)
