from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "controlpanel.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from controlpanel.core import roles
        from controlpanel.core.extensions import HOME_PANELS, RUN_PANELS, TARGET_LINKS, NavEntry, add_nav, register
        from controlpanel.runs.signals import run_completed

        from . import panels, postmigration

        add_nav(NavEntry("Monitoring", "monitoring:index", roles.VIEW_RUNS, "monitoring", order=40))
        register(HOME_PANELS, panels.home_panel)
        register(RUN_PANELS, panels.run_panel)
        register(TARGET_LINKS, panels.target_links)
        run_completed.connect(postmigration.on_run_completed, dispatch_uid="monitoring.post_migration_tasks")
