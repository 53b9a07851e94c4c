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

        from . import cli, views

        add_nav(NavEntry("Safety", "safety:index", roles.VIEW_RUNS, key="safety", order=40))
        register(RUN_PANELS, views.run_panel)
        register(HOME_PANELS, views.home_panel)
        register(TARGET_LINKS, views.target_links)
        RUNBOOK_SUBCOMMANDS.update(cli.SUBCOMMANDS)
