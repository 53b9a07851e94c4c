"""Leads' records about runs: approvals of production actions, escalations, and cached run summaries."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from controlpanel.runs.models import Run


class Approval(models.Model):
    """A lead's decision on a production action, bound to the exact run and bundle checksums seen."""

    class Action(models.TextChoices):
        STEP1 = "step1", "Production Step 1 (schema migration)"
        ROLLBACK = "rollback", "Emergency rollback"

    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REFUSED = "refused", "Refused"

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="approvals")
    action = models.CharField(max_length=16, choices=Action.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", help_text="The lead who decided (approved or refused).")
    decision = models.CharField(max_length=16, choices=Decision.choices, default=Decision.PENDING)
    checksums = models.JSONField(default=dict, help_text="The bundle checksums the lead saw when deciding.")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["run", "action"])]

    def __str__(self):
        return f"{self.get_action_display()} on run {self.run_id}: {self.decision}"


class Escalation(models.Model):
    """Who was asked for help about a failed step, when and why (also sent through notify)."""

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="escalations")
    step_key = models.CharField(max_length=64)
    level = models.PositiveSmallIntegerField()
    contact = models.CharField(max_length=300, help_text="Who was asked (copied: contacts change later).")
    reason = models.TextField()
    asked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    asked_at = models.DateTimeField(default=timezone.now)
    delivered_via = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["asked_at", "id"]
        indexes = [models.Index(fields=["run", "step_key"])]

    def __str__(self):
        return f"Escalation level {self.level} on run {self.run_id} / {self.step_key}"


class RunSummary(models.Model):
    """Figures shown per row of the history page, computed once a run is finished (see summaries.py)."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="lead_summary")
    run_status = models.CharField(max_length=16)  # the run status the summary was computed for
    computed_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    steps_succeeded = models.PositiveIntegerField(default=0)
    steps_failed = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    scorecard = models.JSONField(null=True, blank=True)  # {"met", "not_met", "unknown", "total", "verdict"}

    def __str__(self):
        return f"summary of run {self.run_id}"
