"""A target's production classification cannot be switched off once it has a run; runs keep their snapshot;
leads cannot edit periodic tasks; the reaper's schedule comes back at start-up."""

import pytest
from django.core.exceptions import ValidationError

from controlpanel.core.models import AuditEvent
from controlpanel.runs import engine, gates


@pytest.fixture
def admin_lead(db, lead):
    lead.is_staff = True
    lead.save()
    return lead


def target_form(target, **changes):
    data = {"name": target.name, "environment": target.environment, "dsn_env_var": target.dsn_env_var,
            "service_key_env_var": target.service_key_env_var, "notes": target.notes}
    return data | changes


def test_the_environment_of_a_target_with_a_run_cannot_change(admin_lead, client, oncall, paper_target):
    paper_target.environment = "production"
    paper_target.save()
    run = engine.create_run(paper_target, oncall)
    client.force_login(admin_lead)
    client.post(f"/admin/targets/target/{paper_target.pk}/change/", target_form(paper_target, environment="staging"))
    client.post(f"/admin/targets/target/{paper_target.pk}/change/",
                target_form(paper_target, dsn_env_var="CP_TEST_TARGET_1"))
    paper_target.refresh_from_db()
    assert paper_target.environment == "production" and paper_target.dsn_env_var == "CP_TEST_UNREACHABLE_DSN"
    paper_target.environment = "staging"
    with pytest.raises(ValidationError):
        paper_target.save()  # not through the admin either
    assert any("staging" in r for r in gates.production_gates(run))


def test_a_run_keeps_the_environment_it_was_created_with(db, oncall, paper_target):
    paper_target.environment = "production"
    paper_target.save()
    run = engine.create_run(paper_target, oncall)
    type(paper_target).objects.filter(pk=paper_target.pk).update(environment="staging")  # behind the model's back
    run.refresh_from_db()
    assert run.environment == "production" and run.is_production
    assert gates.production_gates(run), "the gates read the run's snapshot, not the live target"


def test_target_changes_in_the_admin_are_audited(admin_lead, client, paper_target):
    client.force_login(admin_lead)
    response = client.post(f"/admin/targets/target/{paper_target.pk}/change/",
                           target_form(paper_target, environment="staging", notes="moved"))
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.change", object_type="targets.Target")
    assert event.detail["changes"]["environment"] == {"from": "demo", "to": "staging"}
    assert event.username == admin_lead.username


def test_leads_see_periodic_tasks_but_cannot_add_change_or_delete_them(admin_lead, client):
    from django_celery_beat.models import PeriodicTask

    from controlpanel.core.roles import ensure_roles
    from controlpanel.core.schedules import ensure_schedules

    ensure_roles()
    ensure_schedules()
    task = PeriodicTask.objects.get(task="controlpanel.runs.tasks.reap_stale_steps")
    client.force_login(admin_lead)
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 200
    assert client.get("/admin/django_celery_beat/periodictask/add/").status_code == 403
    client.post(f"/admin/django_celery_beat/periodictask/{task.pk}/delete/", {"post": "yes"})
    changelist = "/admin/django_celery_beat/periodictask/"
    client.post(changelist, {"action": "delete_selected", "_selected_action": [task.pk], "post": "yes"})
    client.post(f"{changelist}add/", {"name": "forge", "task": "controlpanel.runs.tasks.drive_run",
                                      "args": "[1, null, 2]"})
    assert PeriodicTask.objects.filter(pk=task.pk).exists()
    assert not PeriodicTask.objects.filter(name="forge").exists()


def test_beat_recreates_and_reenables_the_reaper_schedule_at_start_up(transactional_db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from controlpanel.celery import app

    PeriodicTask.objects.filter(task="controlpanel.runs.tasks.reap_stale_steps").delete()
    DatabaseScheduler(app=app, lazy=False)
    reaper = PeriodicTask.objects.get(task="controlpanel.runs.tasks.reap_stale_steps")
    assert reaper.enabled and reaper.interval.every == 5
    reaper.enabled = False
    reaper.save()
    DatabaseScheduler(app=app, lazy=False)
    assert PeriodicTask.objects.get(pk=reaper.pk).enabled
