"""Snapshots taken in the worker when key steps succeed, and the evidence collection after Step 5."""

from django.db import transaction

from controlpanel.runbook.definition import RUNBOOK

from . import pending
from .collect import access_before_now, snapshot_now
from .models import Snapshot
from .tasks import after_snapshot_and_evidence_task

# Which step's success records which snapshot is declared on the steps (Step.snapshot).
SNAPSHOT_AFTER = {key: Snapshot.Label(label) for key, label in RUNBOOK.snapshot_steps().items()}


def on_attempt_finished(sender, attempt, **kwargs):
    label = SNAPSHOT_AFTER.get(attempt.step.key)
    if label is None or attempt.status != "succeeded":
        return
    if label == Snapshot.Label.AFTER:
        # Nothing after Step 5's database validation changes the target: snapshot and evidence in a task,
        # so the worker (and the migration lock) is free for the next step at once.
        pending.mark(attempt, pending.QUEUED)
        transaction.on_commit(lambda: after_snapshot_and_evidence_task.delay(attempt.pk))
        return
    snapshot_now(attempt, label)
    if label == Snapshot.Label.BEFORE:
        access_before_now(attempt)
