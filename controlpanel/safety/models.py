"""What the safety area keeps: preflight reports, rehearsals on copies, rollback preparations (the rollback
verdict compares the evidence area's snapshots, see safety/rollback.py)."""

from django.conf import settings
from django.db import models

from controlpanel.targets.models import Target


class PreflightReport(models.Model):
    """A go / no-go list for a target, with the evidence of each check (see safety/preflight.py)."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="preflight_reports")
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    go = models.BooleanField(default=False)
    checksums = models.JSONField(default=dict)  # the bundle it judged: the production gate matches on it
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Preflight {self.pk} on {self.target.name}: {'go' if self.go else 'no-go'}"


class LintSignOff(models.Model):
    """A lead accepts one blocking squawk finding: one rule on one statement (by digest) of one bundle file.

    Keyed by the statement's text, not a target or a run: the same statement judged safe stays signed off,
    and any edit of it needs a new sign-off."""

    rule = models.CharField(max_length=80)
    file = models.CharField(max_length=200)
    statement_digest = models.CharField(max_length=64)
    reason = models.TextField()
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "file", "statement_digest"],
                                               name="one_signoff_per_rule_statement")]

    def __str__(self):
        return f"{self.rule} on {self.file} #{self.statement_digest[:12]} signed off by {self.signed_by}"


class Rehearsal(models.Model):
    """The whole bundle run against a disposable copy of a target (see safety/rehearsal.py)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="rehearsals")
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    bundle_dir = models.CharField(max_length=500)
    checksums = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    passed = models.BooleanField(default=False)  # every file ran and every blocking verdict is met
    # The evidence alone (access, probes, contents, locks, …) — what the production gate reads. None: no evidence
    # was taken (the rehearsal stopped before it).
    evidence_passed = models.BooleanField(null=True)
    verdicts = models.JSONField(default=list)  # safety.verdicts.Verdict.as_dict(), one per criterion and stage
    report = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Rehearsal {self.pk} on {self.target.name}: {self.status}"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RollbackPreparation(models.Model):
    """What an emergency rollback of a run would delete, gathered by a task (never in a request)."""

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict)  # {"counts": {...}, "organizations": [...]} or {"error": ...}

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Rollback preparation {self.pk} for run {self.run_id}"

