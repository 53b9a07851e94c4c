"""The troubleshooting page: stored results of the runbook's debug queries and common issues."""

import time

import pytest

from controlpanel.core.models import AuditEvent
from controlpanel.monitoring.models import TroubleshootingResult
from controlpanel.monitoring.tasks import refresh_troubleshooting_now
from controlpanel.monitoring.troubleshooting import ROW_LIMIT
from controlpanel.targets.connection import dsn_for
from tests.helpers.targets import forward_files, psql_file

from .conftest import ALL_ORGANIZATIONS


def result_for(target):
    return refresh_troubleshooting_now(TroubleshootingResult.objects.create(target=target))


def sections(result):
    return {s["key"]: s for s in result.result["sections"]}


def test_it_runs_the_debug_queries_on_a_migrated_target(migrated_target):
    result = result_for(migrated_target)
    assert result.status == "done" and result.finished_at
    s = sections(result)
    assert s["users_without_membership"]["total"] == 0
    assert s["data_distribution"]["total"] == ALL_ORGANIZATIONS
    assert s["data_distribution"]["columns"] == ["organization", "reports", "jobs"]
    assert sum(row[1] for row in s["data_distribution"]["rows"]) == 2000
    assert s["data_distribution"]["unassigned"] == {"reports": 0, "jobs": 0}
    assert {row[0] for row in s["rls_policies"]["rows"]} >= {"audit_reports", "organizations"}
    assert all(row[4] == "done" for row in s["migration_progress"]["rows"])
    assert result.result["resume"]["step"] == "step2.validate"
    issues = {i["key"]: i for i in result.result["issues"]}
    assert all(f["ok"] for f in issues["data_incomplete"]["findings"])


def test_a_partial_migration_says_what_exists_and_where_to_resume(target_factory):
    target = target_factory()
    psql_file(dsn_for(target), forward_files()[0])
    result = result_for(target)
    state = {s["step"]: s for s in result.result["bundle_state"]}
    assert not state["step1.schema"]["missing"] and "table public.organizations" in state["step1.schema"]["present"]
    assert "policy mt_audit_reports_select on audit_reports" in state["step1.rls"]["missing"]
    assert result.result["resume"]["step"] == "step1.rls"
    issue = next(i for i in result.result["issues"] if i["key"] == "organizations_exists")
    assert issue["findings"][0] == {"ok": False, "text": "A previous run left a partial state."}
    assert sections(result)["users_without_membership"]["total"] == 200  # no membership backfilled yet


def test_a_target_not_migrated_skips_the_queries_that_need_organizations(target_factory):
    result = result_for(target_factory())
    s = sections(result)
    assert "skipped" in s["migration_progress"] and "skipped" in s["data_distribution"]
    assert "rows" in s["rls_policies"]
    assert result.result["resume"]["step"] == "step1.schema"


def test_the_page_shows_the_stored_result_with_its_time(client, oncall, migrated_target):
    result = result_for(migrated_target)
    client.force_login(oncall)
    page = client.get(f"/monitoring/targets/{migrated_target.name}/troubleshooting/").content.decode()
    assert 'data-status="done"' in page and 'data-resume="step2.validate"' in page
    assert f'datetime="{result.finished_at.isoformat()}"' in page
    assert 'data-section="data_distribution"' in page and f'data-rows="{min(ALL_ORGANIZATIONS, ROW_LIMIT)}"' in page
    assert "Users without an organization membership" in page and "Organizations table already exists" in page


def test_refresh_queues_a_task_and_the_fragment_polls_until_done(client, oncall, migrated_target, monkeypatch):
    from controlpanel.monitoring import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_troubleshooting, "delay", lambda pk: queued.append(pk))
    client.force_login(oncall)
    url = f"/monitoring/targets/{migrated_target.name}/troubleshooting/"
    response = client.post(url + "refresh/", HTTP_HX_REQUEST="true")
    fragment = response.content.decode()
    result = TroubleshootingResult.objects.get()
    assert queued == [result.pk] and result.status == "queued"
    assert 'hx-trigger="every 2s"' in fragment and 'data-status="queued"' in fragment
    assert AuditEvent.objects.filter(action="monitoring.troubleshooting", user=oncall).exists()

    refresh_troubleshooting_now(result)  # what the worker does
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="done"' in fragment and "every 2s" not in fragment
    assert "<html" not in fragment  # a fragment, not the page


def test_support_and_people_without_a_role_cannot_refresh(client, support, cast, migrated_target):
    for user in (support, cast["nora"]):
        client.force_login(user)
        assert client.post(f"/monitoring/targets/{migrated_target.name}/troubleshooting/refresh/").status_code == 403
        assert client.get(f"/monitoring/targets/{migrated_target.name}/troubleshooting/").status_code == 403
    assert not TroubleshootingResult.objects.exists()


@pytest.mark.usefixtures("celery_worker")
def test_the_worker_stores_the_result(transactional_db, client, oncall, migrated_template, target_factory):
    target = target_factory(template=migrated_template)
    client.force_login(oncall)
    client.post(f"/monitoring/targets/{target.name}/troubleshooting/refresh/")
    deadline = time.monotonic() + 60
    result = TroubleshootingResult.objects.get(target=target)
    while result.status == "queued" and time.monotonic() < deadline:
        time.sleep(0.3)
        result.refresh_from_db()
    assert result.status == "done", result.error
    assert sections(result)["data_distribution"]["total"] == ALL_ORGANIZATIONS


def test_a_completed_run_is_not_told_to_continue_with_the_validation_tests(migrated_target, cast):
    from controlpanel.runs import engine
    from controlpanel.runs.models import StepRun

    run = engine.create_run(migrated_target, cast["alice"])
    StepRun.objects.filter(run=run, key__in=["step1.schema", "step1.rls", "step1.data", "step2.validate"]).update(
        status="succeeded")
    resume = result_for(migrated_target).result["resume"]
    assert resume["step"] == "step3.deploy" and "run #" in resume["text"]

    StepRun.objects.filter(run=run).update(status="succeeded")
    resume = result_for(migrated_target).result["resume"]
    assert resume["step"] is None and resume["text"].startswith("The migration is complete")
