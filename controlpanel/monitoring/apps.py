from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "controlpanel.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from controlpanel.runs.signals import run_completed

        from . import postmigration

        run_completed.connect(postmigration.on_run_completed, dispatch_uid="monitoring.post_migration_tasks")
