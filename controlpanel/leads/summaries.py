"""Per-run figures for the history page: computed from steps and attempts, cached once a run is finished."""

import logging

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from controlpanel.runs.models import Attempt, Run, StepRun

from . import scorecards
from .models import RunSummary

log = logging.getLogger(__name__)


def compute(run: Run) -> RunSummary:
    """Compute and store the summary of one run (a few aggregate queries plus the scorecard)."""
    steps = StepRun.objects.filter(run=run).aggregate(
        started=Min("started_at"), ended=Max("finished_at"),
        succeeded=Count("id", filter=Q(status=StepRun.Status.SUCCEEDED)),
        failed=Count("id", filter=Q(status__in=[StepRun.Status.FAILED, StepRun.Status.INTERRUPTED])),
    )
    attempts = Attempt.objects.filter(step__run=run).count()
    started = steps["started"]
    ended = run.finished_at or steps["ended"]
    duration = (ended - started).total_seconds() if started and ended and ended >= started else None
    summary, _ = RunSummary.objects.update_or_create(run=run, defaults={
        "run_status": run.status, "computed_at": timezone.now(), "started_at": started, "ended_at": ended,
        "duration_seconds": duration, "steps_succeeded": steps["succeeded"], "steps_failed": steps["failed"],
        "attempts": attempts, "scorecard": scorecards.summarize(scorecards.scorecard_lines(run)),
    })
    return summary


def is_fresh(summary: RunSummary | None, run: Run) -> bool:
    # An open run changes with every click; only a finished run's summary is worth keeping.
    return summary is not None and run.status != Run.Status.OPEN and summary.run_status == run.status


def summaries_for(runs) -> dict[int, RunSummary]:
    """Summaries of the given runs (one page of history), computing the missing or stale ones."""
    runs = list(runs)
    cached = {s.run_id: s for s in RunSummary.objects.filter(run__in=[r.pk for r in runs])}
    result: dict[int, RunSummary] = {}
    for run in runs:
        summary = cached.get(run.pk)
        result[run.pk] = summary if summary is not None and is_fresh(summary, run) else compute(run)
    return result


def refresh_for_attempt(sender, attempt, **kwargs):
    """Signal receiver (worker side): recompute when a finished run's attempt ends (e.g. a rollback)."""
    try:
        run = Run.objects.get(pk=attempt.step.run_id)
        if run.status != Run.Status.OPEN:
            compute(run)
    except Exception:  # the summary is a cache: the page recomputes it; never break the worker for it
        log.exception("summary refresh failed for attempt %s", attempt.pk)


def refresh_for_run(sender, run, **kwargs):
    try:
        with transaction.atomic():  # a savepoint: a failure here must not break the caller's transaction
            compute(run)
    except Exception:
        log.exception("summary refresh failed for run %s", run.pk)
