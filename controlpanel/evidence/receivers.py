"""Snapshots taken in the worker when key steps succeed, and the evidence collection after Step 5."""

import logging

import psycopg
from django.db import transaction

from controlpanel.runs.models import StepEvent
from controlpanel.targets.connection import TargetUnavailable

from .models import Snapshot

log = logging.getLogger(__name__)

SNAPSHOT_AFTER = {
    "pre.assessment": Snapshot.Label.BEFORE,
    "step5.database": Snapshot.Label.AFTER,
    "rollback.emergency": Snapshot.Label.AFTER_ROLLBACK,
}


def on_attempt_finished(sender, attempt, **kwargs):
    label = SNAPSHOT_AFTER.get(attempt.step.key)
    if label is None or attempt.status != "succeeded":
        return
    if label == Snapshot.Label.AFTER:
        # Nothing after Step 5's database validation changes the target: snapshot and evidence in a task,
        # so the worker (and the migration lock) is free for the next step at once.
        from . import pending
        from .tasks import after_snapshot_and_evidence_task

        pending.mark(attempt, pending.QUEUED)
        transaction.on_commit(lambda: after_snapshot_and_evidence_task.delay(attempt.pk))
        return
    snapshot_now(attempt, label)
    if label == Snapshot.Label.BEFORE:
        access_before_now(attempt)


def access_before_now(attempt):
    """The "before" access map, after the snapshot (its probes must not be in the snapshot's figures)."""
    from .collect import take_access_before

    try:
        report = take_access_before(attempt.step.run, attempt)
    except (TargetUnavailable, psycopg.Error) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.ERROR,
                                 message=f"The 'before' access map failed: {message}")
        return None
    subjects = len(report.data.get("subjects", []))
    StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.INFO if report.passed else StepEvent.Kind.ERROR,
                             message=f"Evidence: 'before' access map of {subjects} subjects taken ({report.seconds} s)"
                                     + (f"; {report.error}" if report.error else "."))
    return report


def snapshot_now(attempt, label):
    """Before Step 1 / after a rollback: taken here, before anything else can change the target."""
    from .collect import take_snapshot

    run = attempt.step.run
    try:
        snapshot = take_snapshot(run, label, attempt)
    except (TargetUnavailable, psycopg.Error) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.ERROR,
                                 message=f"The '{label}' evidence snapshot failed: {message}")
        log.warning("snapshot %s of run %s failed: %s", label, run.pk, message)
        return None
    StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.INFO,
                             message=f"Evidence: '{label}' snapshot taken ({snapshot.data.get('seconds')} s).")
    return snapshot
