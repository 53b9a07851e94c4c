"""Runs of the runbook against a target: steps, attempts, events, checklist ticks, gate overrides.

State changes live in `controlpanel/runs/engine.py`; these classes hold the data and small derivations.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.targets.models import Target


class Run(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        ABANDONED = "abandoned", "Abandoned"

    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="runs")
    # The target's classification when the run was created: the gates read this, never the live target row.
    environment = models.CharField(max_length=16, choices=Target.Environment.choices, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    window_start = models.DateTimeField("maintenance window start", null=True, blank=True)
    window_end = models.DateTimeField("maintenance window end", null=True, blank=True)
    bundle_dir = models.CharField(max_length=500)
    checksums = models.JSONField(default=dict)  # bundle file name -> sha256, pinned at creation
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Run {self.pk} on {self.target.name}"

    def save(self, *args, **kwargs):
        if self._state.adding and not self.environment:  # snapshot at creation, whoever creates the row
            self.environment = self.target.environment
        super().save(*args, **kwargs)

    @property
    def is_production(self) -> bool:
        return self.environment == Target.Environment.PRODUCTION

    @property
    def checksum_digest(self) -> str:
        """A short identity of the pinned bundle, to compare runs (staging vs production)."""
        import hashlib

        joined = "".join(f"{name}:{digest}\n" for name, digest in sorted(self.checksums.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:12]


class StepRun(models.Model):
    """One runbook step within a run; its attempts carry the execution details."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        PAUSED = "paused", "Paused"  # the backfill stopped after its committed batches, on request
        INTERRUPTED = "interrupted", "Interrupted"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Filled when a person marks the step done without the panel executing it (sign-off or "mark done").
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sign_off_reason = models.TextField(blank=True)
    flagged_for_investigation = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="one_steprun_per_key")]

    def __str__(self):
        return f"{self.key} ({self.status})"

    @property
    def definition(self):
        return RUNBOOK.step(self.key)

    @property
    def elapsed_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class Attempt(models.Model):
    """One execution of a step: a Celery task. The number doubles as the fencing token."""

    step = models.ForeignKey(StepRun, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=StepRun.Status.choices, default=StepRun.Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    params = models.JSONField(default=dict, blank=True)  # e.g. {"table": "audit_reports"}
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    backend_pid = models.IntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    pause_requested = models.BooleanField(default=False)
    error = models.JSONField(null=True, blank=True)  # {"message", "file", "statement", "position", "sqlstate"}
    result = models.JSONField(default=dict, blank=True)  # the executor's summary and evidence
    progress = models.JSONField(default=dict, blank=True)  # latest progress (rows done/total, rate, eta)

    class Meta:
        ordering = ["step_id", "number"]
        constraints = [models.UniqueConstraint(fields=["step", "number"], name="unique_attempt_number")]

    def __str__(self):
        return f"{self.step.key} attempt {self.number}"


class StepEvent(models.Model):
    """Append-only log of an attempt: statements, NOTICEs, output lines, errors, lock samples."""

    class Kind(models.TextChoices):
        INFO = "info", "Info"
        STATEMENT = "statement", "Statement"
        NOTICE = "notice", "Notice"
        OUTPUT = "output", "Output"
        LOCKS = "locks", "Locks"
        ERROR = "error", "Error"

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["attempt", "id"])]

    def __str__(self):
        return f"{self.kind}: {self.message[:60]}"


class ChecklistTick(models.Model):
    """A checklist item ticked by a person, or verified by the panel (ticked_by empty, evidence filled)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="ticks")
    step_key = models.CharField(max_length=64)
    item_key = models.CharField(max_length=64)
    ticked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ticked_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    verified = models.BooleanField(default=False)
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "step_key", "item_key"], name="one_tick_per_item")
        ]

    def __str__(self):
        return f"{self.step_key}/{self.item_key}"


class GateOverride(models.Model):
    """A lead's recorded decision to pass a production gate without its evidence."""

    class Gate(models.TextChoices):
        STAGING = "staging", "Staging run with the same checksums completed Step 2"
        REHEARSAL = "rehearsal", "Rehearsal on a copy with the same checksums passed with its evidence"
        PREFLIGHT = "preflight", "Preflight of the same checksums without NO-GO"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="overrides")
    gate = models.CharField(max_length=16, choices=Gate.choices)
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    checksums = models.JSONField(default=dict)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "gate"], name="one_override_per_gate")]

    def __str__(self):
        return f"{self.gate} override on run {self.run_id}"


class StepCommandManager(models.Manager["StepCommand"]):
    def command_for(self, run: Run, step_def) -> "StepCommand | None":
        """The command a command step runs in the run's environment (else the one for every environment)."""
        if not step_def.command_name:
            return None
        return (
            self.filter(name=step_def.command_name, environment=run.environment).first()
            or self.filter(name=step_def.command_name, environment="").first()
        )


class StepCommand(models.Model):
    """An external command for a command step (e.g. `npm run deploy` in the Workers checkout)."""

    name = models.SlugField(help_text="Matches the step's command name, e.g. workers_deploy.")
    environment = models.CharField(
        max_length=16, blank=True, choices=Target.Environment.choices, help_text="Empty: every environment."
    )
    working_directory = models.CharField(max_length=500)
    arguments = models.JSONField(help_text='Argument list, e.g. ["npm", "run", "deploy"] (no shell).')
    passed_variables = models.JSONField(
        default=list, blank=True,
        help_text='Names of the worker\'s environment variables the command receives, e.g. ["CLOUDFLARE_API_TOKEN"]. '
                  "Nothing else is passed but PATH, HOME and the locale; their values are redacted from the log.",
    )
    timeout_seconds = models.PositiveIntegerField(default=900)

    objects = StepCommandManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "environment"], name="one_command_per_env")]

    def __str__(self):
        return self.name
