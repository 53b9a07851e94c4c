from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "controlpanel.leads"
    label = "leads"
    verbose_name = "Leads: history, approvals, escalations"

    def ready(self):
        from controlpanel.core import roles
        from controlpanel.core.extensions import RUN_PANELS, NavEntry, add_nav, register
        from controlpanel.runs import gates, signals

        from . import approvals, panels, summaries

        add_nav(NavEntry("History", "leads:history", roles.LEAD_ACTIONS, "history", order=30))
        add_nav(NavEntry("Audit log", "leads:audit", roles.LEAD_ACTIONS, "audit", order=80))
        register(RUN_PANELS, panels.lead_links_panel)
        register(RUN_PANELS, panels.approvals_panel)
        register(RUN_PANELS, panels.escalation_panel)
        if approvals.step1_gate not in gates.EXTRA_GATES:
            gates.EXTRA_GATES.append(approvals.step1_gate)
        rollback_gates = gates.STEP_GATES.setdefault("rollback.emergency", [])
        if approvals.rollback_gate not in rollback_gates:
            rollback_gates.append(approvals.rollback_gate)
        signals.attempt_finished.connect(summaries.refresh_for_attempt, dispatch_uid="leads.summary.attempt")
        signals.run_completed.connect(summaries.refresh_for_run, dispatch_uid="leads.summary.run")
