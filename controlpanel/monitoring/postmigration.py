"""Post-migration tasks (runbook Day 1 / Week 1 / Month 1) attached to a completed run."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from controlpanel.core import audit
from controlpanel.runbook.definition import POST_MIGRATION_TASKS

from .models import PostMigrationTask


def create_tasks(run) -> list[PostMigrationTask]:
    """One task per runbook entry, due N days after the run finished, owned by whoever created the run."""
    completed = run.finished_at or timezone.now()
    created = []
    for task in POST_MIGRATION_TASKS:
        row, made = PostMigrationTask.objects.get_or_create(
            run=run, key=task.key,
            defaults={"text": task.text, "due_at": completed + timedelta(days=task.due_days), "owner": run.created_by})
        if made:
            created.append(row)
    if created:
        audit.record("postmigration.create", obj=run, run=run.pk, tasks=len(created))
    return created


def set_done(task: PostMigrationTask, user, done: bool, request=None) -> PostMigrationTask:
    with transaction.atomic():
        task = PostMigrationTask.objects.select_for_update().get(pk=task.pk)
        if done == task.done:
            return task
        task.done_at, task.done_by = (timezone.now(), user) if done else (None, None)
        task.save(update_fields=["done_at", "done_by"])
        audit.record("postmigration.done" if done else "postmigration.reopen", user=user, request=request,
                     obj=task, run=task.run_id, task=task.key)
    return task


def overdue_tasks():
    return (PostMigrationTask.objects.filter(done_at__isnull=True, due_at__lt=timezone.now())
            .select_related("run__target", "owner").order_by("due_at"))


def on_run_completed(sender, run, **kwargs):
    """runs.signals.run_completed receiver: create the tasks, and check the target's health after commit."""
    create_tasks(run)

    def enqueue():
        from .tasks import health_check

        try:
            health_check.delay(run.target_id, run.pk)
        except Exception:  # a missing broker must not undo a completed run; beat checks again later
            pass

    transaction.on_commit(enqueue)
