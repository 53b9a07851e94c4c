from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "controlpanel.safety"
    label = "safety"
    verbose_name = "Safety: preflight, rehearsal, rollback"

    def ready(self):
        from controlpanel.core import roles
        from controlpanel.core.extensions import (
            HOME_PANELS,
            RUN_PANELS,
            RUNBOOK_SUBCOMMANDS,
            TARGET_LINKS,
            NavEntry,
            add_nav,
            register,
        )
        from controlpanel.runs import gates as run_gates

        from . import cli, gates, views

        add_nav(NavEntry("Safety", "safety:index", roles.VIEW_RUNS, key="safety", order=40))
        register(RUN_PANELS, views.run_panel)
        register(HOME_PANELS, views.home_panel)
        register(TARGET_LINKS, views.target_links)
        register(run_gates.EXTRA_GATES, gates.rehearsal_gate)
        RUNBOOK_SUBCOMMANDS.update(cli.SUBCOMMANDS)
