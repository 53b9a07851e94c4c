"""Celery tasks of the monitoring area: thin wrappers over plain functions a test can call directly."""

import logging

from celery import shared_task
from django.utils import timezone

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.targets.connection import TargetUnavailable, target_connection
from controlpanel.targets.models import Target

from .checks import check_and_store
from .models import TroubleshootingResult
from .pruning import prune_health_history
from .troubleshooting import collect_troubleshooting

log = logging.getLogger(__name__)


@shared_task
def health_check(target_id: int, run_id: int | None = None) -> dict:
    """One health check of one target, stored as a HealthCheck row."""
    from controlpanel.runs.models import Run

    target = Target.objects.get(pk=target_id)
    run = Run.objects.filter(pk=run_id).first() if run_id else None
    check = check_and_store(target, run=run)
    return {"check": check.pk, "ok": check.ok, "alerts": [a["code"] for a in check.alerts]}


def enqueue_health_checks(targets=None) -> list[int]:
    """Queue one health check per target on the default queue; returns the target ids queued."""
    queued = []
    for target in targets if targets is not None else Target.objects.all():
        health_check.delay(target.pk)
        queued.append(target.pk)
    return queued


@shared_task
def schedule_health_checks() -> list[int]:
    """What beat runs: fan out one health check task per target (the checks run in the worker)."""
    return enqueue_health_checks()


@shared_task
def prune_health_history_task() -> dict:
    return prune_health_history()


def latest_run_progress(target: Target) -> dict | None:
    """The target's latest run and its first main-flow step after Step 1 not yet succeeded (None: all have);
    troubleshooting only asks once the catalog shows Step 1's objects, so Step 1 itself is read from there."""
    from controlpanel.runs.models import Run, StepRun

    run = Run.objects.filter(target=target).order_by("-created_at", "-pk").first()
    if run is None:
        return None
    succeeded = set(run.steps.filter(status=StepRun.Status.SUCCEEDED).values_list("key", flat=True))
    keys = [step.key for step in RUNBOOK.main_steps()]
    after_step1 = keys[keys.index(RUNBOOK.forward_keys()[-1]) + 1:]
    pending = [key for key in after_step1 if key not in succeeded]
    return {"run": run.pk, "next": pending[0] if pending else None}


def refresh_troubleshooting_now(result: TroubleshootingResult) -> TroubleshootingResult:
    """Run the runbook's debug queries against the result's target and store them on the row."""
    try:
        with target_connection(result.target, application_name="controlpanel-troubleshooting") as conn:
            result.result = collect_troubleshooting(conn, result.target, latest_run_progress(result.target))
        result.status = TroubleshootingResult.Status.DONE
    except TargetUnavailable as exc:
        result.status, result.error = TroubleshootingResult.Status.FAILED, str(exc)
    except Exception as exc:  # stored for the page; the class and first line say enough
        log.exception("troubleshooting of %s failed", result.target.name)
        text = str(exc).strip()
        result.status = TroubleshootingResult.Status.FAILED
        result.error = f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__
    result.finished_at = timezone.now()
    result.save(update_fields=["result", "status", "error", "finished_at"])
    return result


@shared_task
def refresh_troubleshooting(result_id: int) -> str:
    return refresh_troubleshooting_now(TroubleshootingResult.objects.select_related("target").get(pk=result_id)).status
