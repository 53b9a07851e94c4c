from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "controlpanel.leads"
    label = "leads"
    verbose_name = "Leads: history, approvals, escalations"

    def ready(self):
        from controlpanel.core import roles
        from controlpanel.core.extensions import HOME_PANELS, RUN_PANELS, NavEntry, add_nav, register
        from controlpanel.runs import signals

        from . import panels, summaries

        add_nav(NavEntry("History", "leads:history", roles.LEAD_ACTIONS, "history", order=30))
        add_nav(NavEntry("Audit log", "leads:audit", roles.LEAD_ACTIONS, "audit", order=80))
        register(HOME_PANELS, panels.approvals_inbox)
        register(RUN_PANELS, panels.lead_links_panel)
        register(RUN_PANELS, panels.approvals_panel)
        register(RUN_PANELS, panels.escalation_panel)
        signals.attempt_finished.connect(summaries.refresh_for_attempt, dispatch_uid="leads.summary.attempt")
        signals.run_completed.connect(summaries.refresh_for_run, dispatch_uid="leads.summary.run")
