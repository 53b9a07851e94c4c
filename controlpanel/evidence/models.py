"""Evidence of a run, stored in the control DB: snapshots, collected reports, and people's sign-offs."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from controlpanel.runs.models import Attempt, Run


class Snapshot(models.Model):
    """The target's figures at a point of the run (see evidence/snapshots.py for `data`)."""

    class Label(models.TextChoices):
        BEFORE = "before", "Before Step 1"
        AFTER = "after", "After Step 5"
        AFTER_ROLLBACK = "after_rollback", "After rollback"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="snapshots")
    label = models.CharField(max_length=16, choices=Label.choices)
    taken_at = models.DateTimeField(default=timezone.now)
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["run", "label", "-taken_at"])]

    def __str__(self):
        return f"{self.label} snapshot of run {self.run_id}"


class EvidenceReport(models.Model):
    """Evidence gathered from the target by the collect task (RLS audit, probes, SLA timing, indexes)."""

    class Kind(models.TextChoices):
        RLS_AUDIT = "rls_audit", "RLS audit"
        PROBES = "probes", "Isolation probes"
        SLA = "sla", "SLA timing"
        INDEXES = "indexes", "Index usage"
        ACCESS_BEFORE = "access_before", "Access map before Step 1"
        ACCESS = "access", "Access diff"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="evidence_reports")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    collected_at = models.DateTimeField(default=timezone.now)
    passed = models.BooleanField(null=True)
    error = models.TextField(blank=True)
    seconds = models.FloatField(default=0)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-collected_at", "-id"]
        indexes = [models.Index(fields=["run", "kind", "-collected_at"])]

    def __str__(self):
        return f"{self.kind} of run {self.run_id}"


class SignOff(models.Model):
    """A person's verdict on a success criterion the panel cannot measure (latest one counts)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="criterion_signoffs")
    criterion = models.SlugField(max_length=64)
    met = models.BooleanField()
    note = models.TextField(blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-signed_at", "-id"]

    def __str__(self):
        return f"{self.criterion} {'met' if self.met else 'not met'} by {self.signed_by}"
