from celery import shared_task

from controlpanel.runs.models import Attempt, Run

from . import pending
from .collect import collect_evidence, snapshot_now
from .models import Snapshot


@shared_task
def collect_evidence_task(run_id: int) -> dict:
    """The "collect evidence" button and the automatic collection after step5.database."""
    reports = collect_evidence(Run.objects.select_related("target").get(pk=run_id))
    return {r.kind: r.passed for r in reports}


@shared_task
def after_snapshot_and_evidence_task(attempt_id: int) -> dict:
    """After step5.database succeeded: the 'after' snapshot, then the evidence collection."""
    attempt = Attempt.objects.select_related("step__run__target").get(pk=attempt_id)
    pending.mark(attempt, pending.COLLECTING)
    try:
        snapshot_now(attempt, Snapshot.Label.AFTER)
        result = collect_evidence_task(attempt.step.run_id)
    except Exception:
        pending.mark(attempt, pending.FAILED)
        raise
    pending.mark(attempt, pending.COLLECTED)
    return result
