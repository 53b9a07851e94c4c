"""Celery entry points (default queue): thin wrappers over functions tests call directly."""

from celery import shared_task
from django.contrib.auth import get_user_model

from controlpanel.runs.models import Run
from controlpanel.targets.models import Target

from .models import Rehearsal, RollbackPreparation


@shared_task
def preflight_task(target_id: int, run_id: int | None = None, user_id: int | None = None) -> int:
    from .preflight import preflight_and_store

    target = Target.objects.get(pk=target_id)
    run = Run.objects.get(pk=run_id) if run_id else None
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return preflight_and_store(target, run=run, user=user).pk


@shared_task
def rehearse_task(rehearsal_id: int) -> bool:
    from .rehearsal import rehearse_and_store

    rehearsal = Rehearsal.objects.select_related("target").get(pk=rehearsal_id)
    if rehearsal.status != Rehearsal.Status.QUEUED:
        return rehearsal.passed  # a redelivery: it already ran (or runs)
    rehearse_and_store(rehearsal)
    return rehearsal.passed


@shared_task
def prepare_rollback_task(preparation_id: int) -> int:
    from .rollback import prepare

    return prepare(RollbackPreparation.objects.select_related("run__target").get(pk=preparation_id)).pk
