"""Post-migration tasks: created when a run completes, due from completion, done/undone audited, overdue on home."""

from datetime import timedelta

import pytest
from django.utils import timezone

from controlpanel.core.models import AuditEvent
from controlpanel.monitoring.models import PostMigrationTask
from controlpanel.runbook.definition import POST_MIGRATION_TASKS, RUNBOOK
from controlpanel.runs import engine
from controlpanel.runs.models import StepRun


@pytest.fixture
def completed_run(target_factory, oncall):
    run = engine.create_run(target_factory(), oncall)
    StepRun.objects.filter(run=run, key__in=[s.key for s in RUNBOOK.main_steps()]).update(status="succeeded")
    engine.refresh_run_status(run)  # sends run_completed
    run.refresh_from_db()
    assert run.status == "completed"
    return run


def test_completing_a_run_creates_the_runbook_tasks_due_from_completion(completed_run, oncall):
    tasks = {t.key: t for t in PostMigrationTask.objects.filter(run=completed_run)}
    assert set(tasks) == {t.key for t in POST_MIGRATION_TASKS}
    for spec in POST_MIGRATION_TASKS:
        task = tasks[spec.key]
        assert task.text == spec.text and task.owner == oncall and not task.done
        assert task.due_at == completed_run.finished_at + timedelta(days=spec.due_days)
    assert tasks["day1.pool"].period == "Day 1" and tasks["month1.custom"].period == "Month 1"


def test_tasks_are_created_once(completed_run):
    from controlpanel.monitoring.postmigration import create_tasks

    assert create_tasks(completed_run) == []
    assert PostMigrationTask.objects.filter(run=completed_run).count() == len(POST_MIGRATION_TASKS)


def test_an_engineer_marks_a_task_done_and_reopens_it_with_an_audit_trail(client, completed_run, oncall):
    task = PostMigrationTask.objects.get(run=completed_run, key="day1.access")
    client.force_login(oncall)
    response = client.post(f"/monitoring/tasks/{task.pk}/done/", {"done": "1"})
    assert response.status_code == 302 and response.url == f"/runs/{completed_run.pk}/"
    task.refresh_from_db()
    assert task.done and task.done_by == oncall and task.done_at <= timezone.now()
    event = AuditEvent.objects.get(action="postmigration.done")
    assert event.user == oncall and event.detail["task"] == "day1.access"

    page = client.get(f"/runs/{completed_run.pk}/").content.decode()
    assert 'data-task="day1.access"' in page and "✔ alice" in page

    client.post(f"/monitoring/tasks/{task.pk}/done/", {"done": "0"})
    task.refresh_from_db()
    assert not task.done and task.done_by is None
    assert AuditEvent.objects.filter(action="postmigration.reopen", user=oncall).exists()


def test_support_cannot_change_tasks(client, completed_run, support):
    task = PostMigrationTask.objects.filter(run=completed_run).first()
    client.force_login(support)
    assert client.post(f"/monitoring/tasks/{task.pk}/done/", {"done": "1"}).status_code == 403
    task.refresh_from_db()
    assert not task.done


def test_overdue_tasks_are_shown_on_the_home_page_for_leads_only(client, completed_run, lead, oncall):
    PostMigrationTask.objects.filter(run=completed_run, key__startswith="day1").update(
        due_at=timezone.now() - timedelta(hours=1))
    PostMigrationTask.objects.filter(run=completed_run, key="day1.pool").update(done_at=timezone.now())
    client.force_login(lead)
    page = client.get("/").content.decode()
    assert "Overdue post-migration tasks" in page
    assert page.count('data-task="day1.') == 3 and 'data-task="day1.pool"' not in page
    assert 'data-task="week1.' not in page
    client.force_login(oncall)
    assert "Overdue post-migration tasks" not in client.get("/").content.decode()


def test_a_lead_reassigning_a_task_in_the_admin_is_audited(client, completed_run, lead, oncall):
    lead.is_staff = True
    lead.save()
    task = PostMigrationTask.objects.filter(run=completed_run).first()
    client.force_login(lead)
    response = client.post(f"/admin/monitoring/postmigrationtask/{task.pk}/change/",
                           {"owner": lead.pk, "due_at_0": task.due_at.strftime("%Y-%m-%d"),
                            "due_at_1": task.due_at.strftime("%H:%M:%S")})
    assert response.status_code == 302, response.content.decode()[:2000]
    task.refresh_from_db()
    assert task.owner == lead
    event = AuditEvent.objects.get(action="admin.change", object_type="monitoring.PostMigrationTask")
    assert event.detail["changes"]["owner"] == {"from": str(oncall.pk), "to": str(lead.pk)} and event.user == lead
