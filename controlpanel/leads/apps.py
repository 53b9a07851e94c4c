from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "controlpanel.leads"
    label = "leads"
    verbose_name = "Leads: history, approvals, escalations"

    def ready(self):
        from controlpanel.runs import signals

        from . import summaries

        signals.attempt_finished.connect(summaries.refresh_for_attempt, dispatch_uid="leads.summary.attempt")
        signals.run_completed.connect(summaries.refresh_for_run, dispatch_uid="leads.summary.run")
