"""Monitoring data in the control DB: health-check time series, troubleshooting results, post-migration tasks."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from controlpanel.targets.models import Target


class HealthCheck(models.Model):
    """One health check of a target: its figures (see monitoring/checks.py) and the alerts they raised."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="health_checks")
    run = models.ForeignKey("runs.Run", on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="health_checks")
    checked_at = models.DateTimeField(default=timezone.now, db_index=True)
    ok = models.BooleanField(default=True)
    figures = models.JSONField(default=dict)
    alerts = models.JSONField(default=list)  # [{"code", "severity": fail|warn, "message"}]
    seconds = models.FloatField(null=True, blank=True)  # how long the check took
    notified = models.JSONField(default=list, blank=True)  # channels that accepted the notification

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["target", "-checked_at"])]

    def __str__(self):
        return f"{self.target.name} at {self.checked_at:%Y-%m-%d %H:%M:%S}"

    @property
    def migrated(self) -> bool:
        return bool(self.figures.get("migrated"))

    @property
    def alert_codes(self) -> set[str]:
        return {a["code"] for a in self.alerts}


class TroubleshootingResult(models.Model):
    """The runbook's debug queries and common-issue diagnosis for a target, computed by a task."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="troubleshooting_results")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self):
        return f"Troubleshooting {self.target.name} at {self.requested_at:%Y-%m-%d %H:%M:%S}"


class PostMigrationTask(models.Model):
    """A Day 1 / Week 1 / Month 1 task of a completed run (runbook.definition.POST_MIGRATION_TASKS)."""

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="post_migration_tasks")
    key = models.CharField(max_length=64)
    text = models.CharField(max_length=300)
    due_at = models.DateTimeField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="post_migration_tasks")
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="monitoring_task_once_per_run")]

    def __str__(self):
        return f"{self.text} (run {self.run_id})"

    @property
    def done(self) -> bool:
        return self.done_at is not None

    @property
    def overdue(self) -> bool:
        return not self.done and self.due_at < timezone.now()

    @property
    def period(self) -> str:
        return {"day1": "Day 1", "week1": "Week 1", "month1": "Month 1"}.get(self.key.split(".")[0], "")
