"""Beat schedules and the worker: a beat-style enqueue, executed by a real worker, stores a check."""

import time

import pytest
from django_celery_beat.models import PeriodicTask

from controlpanel.celery import app
from controlpanel.monitoring.models import HealthCheck
from controlpanel.monitoring.schedules import HEALTH_CHECKS, PRUNE_HISTORY, ensure_monitoring_schedules


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_it_creates_the_periodic_tasks_once_and_keeps_admin_edits(db):
    ensure_monitoring_schedules()
    checks = PeriodicTask.objects.get(name=HEALTH_CHECKS)
    prune = PeriodicTask.objects.get(name=PRUNE_HISTORY)
    assert checks.task == "controlpanel.monitoring.tasks.schedule_health_checks" and checks.interval.every == 15
    assert prune.task == "controlpanel.monitoring.tasks.prune_health_history_task" and prune.crontab is not None
    assert checks.enabled and prune.enabled
    checks.enabled = False  # a lead pauses it in the admin
    checks.save()
    ensure_monitoring_schedules()
    assert PeriodicTask.objects.filter(name=HEALTH_CHECKS).count() == 1
    assert PeriodicTask.objects.get(name=HEALTH_CHECKS).enabled is False


def test_the_scheduled_task_names_are_registered_with_the_worker_app():
    app.loader.import_default_modules()
    for name in ("controlpanel.monitoring.tasks.schedule_health_checks",
                 "controlpanel.monitoring.tasks.prune_health_history_task",
                 "controlpanel.monitoring.tasks.health_check", "controlpanel.monitoring.tasks.refresh_troubleshooting"):
        assert name in app.tasks


@pytest.mark.usefixtures("celery_worker")
def test_a_beat_enqueue_runs_one_check_per_target_in_the_worker(transactional_db, target_factory, migrated_template):
    migrated = target_factory(template=migrated_template)
    plain = target_factory()
    ensure_monitoring_schedules()
    entry = PeriodicTask.objects.get(name=HEALTH_CHECKS)
    # What beat does for this entry: send the task by name, with the entry's arguments, on the default queue.
    app.send_task(entry.task, args=[], kwargs={}, queue="default")
    assert wait_for(lambda: HealthCheck.objects.filter(target__in=[migrated, plain]).count() == 2), \
        HealthCheck.objects.values_list("target__name", "figures")
    by_target = {c.target_id: c for c in HealthCheck.objects.all()}
    assert by_target[migrated.pk].figures["migrated"] is True and by_target[migrated.pk].figures["organizations"] > 0
    assert by_target[plain.pk].figures["migrated"] is False


@pytest.mark.usefixtures("celery_worker")
def test_the_command_queues_checks_for_the_worker(transactional_db, target_factory):
    from django.core.management import call_command

    target = target_factory()
    call_command("healthcheck", "--all", "--queue")
    assert wait_for(lambda: HealthCheck.objects.filter(target=target).exists())
