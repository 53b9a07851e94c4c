"""Emergency and partial rollback through the run engine, with a real worker."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from controlpanel.evidence.models import Snapshot
from controlpanel.evidence.scorecard import pre_migration_snapshot
from controlpanel.runs import engine
from controlpanel.runs.driver import drive
from controlpanel.runs.models import Attempt, Run, StepRun
from controlpanel.safety.models import PreflightReport, Rehearsal, RollbackPreparation
from controlpanel.safety.rollback import NO_BEFORE, verdict
from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts
from controlpanel.targets.connection import target_connection
from tests.helpers.waiting import wait_step, wait_until

from .conftest import edit, migrate, query

pytestmark = pytest.mark.usefixtures("celery_worker")


def state(target):
    with target_connection(target) as conn:
        tables = ["auth.users", "public.profiles", "public.audit_reports", "public.automation_jobs",
                  "public.generated_automations"]
        return schema_fingerprint(conn), table_counts(conn, tables)


def login(client, user):
    assert client.login(username=user.username, password=f"{user.username}-pass-123")
    return client


def test_emergency_rollback_from_the_cli_restores_fingerprint_and_counts(transactional_db, oncall, lead, demo_target):
    fingerprint_before, counts_before = state(demo_target)
    run = engine.create_run(demo_target, oncall)
    drive(run.pk, through="step2.validate", sign_off_as=oncall.pk, operator=oncall, timeout_per_step=120)
    assert run.steps.get(key="step2.validate").status == "succeeded"
    before = Snapshot.objects.get(run=run, label="before")
    assert before.data["counts"]["public.audit_reports"] == counts_before["public.audit_reports"] == 2000
    assert pre_migration_snapshot(run) == before
    assert query(demo_target, "SELECT count(*) FROM public.organizations")[0][0] >= 1

    with pytest.raises(CommandError, match="not a lead"):
        call_command("runbook", "rollback", str(run.pk), "--confirm", demo_target.name, "--as", oncall.username)
    with pytest.raises(CommandError, match="exactly"):
        call_command("runbook", "rollback", str(run.pk), "--confirm", demo_target.name.upper(), "--as", lead.username)
    assert not Attempt.objects.filter(step__run=run, step__key="rollback.emergency").exists()

    out = StringIO()
    call_command("runbook", "rollback", str(run.pk), "--confirm", demo_target.name, "--as", lead.username,
                 "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["status"] == "succeeded"
    assert data["verdict"]["restored"] is True and data["verdict"]["fingerprint_diff"] == []
    assert all(b == a for b, a in data["verdict"]["counts"].values())
    assert data["verdict"]["counts"]["public.audit_reports"] == [2000, 2000]
    assert data["verdict"]["counts_equal"] is True and data["verdict"]["rows_unchanged"] is True
    # One after-rollback snapshot (the evidence area's, of this attempt) is what the verdict read.
    attempt = Attempt.objects.get(step__run=run, step__key="rollback.emergency")
    [after] = Snapshot.objects.filter(run=run, label="after_rollback")
    assert after.attempt == attempt and data["verdict"]["after_snapshot"] == after.pk
    assert data["verdict"]["before_snapshot"] == before.pk
    # Independently of the panel's own snapshots: the target is as it was before the migration.
    fingerprint_after, counts_after = state(demo_target)
    assert diff_fingerprints(fingerprint_before, fingerprint_after) == []
    assert counts_after == counts_before
    run.refresh_from_db()
    assert run.status == Run.Status.ROLLED_BACK
    assert attempt.requested_by == lead and attempt.events.filter(kind="statement").exists()


def test_rollback_page_is_for_leads_counts_come_from_a_task_and_the_name_must_match(
        transactional_db, client, oncall, lead, demo_target):
    migrate(demo_target)
    run = engine.create_run(demo_target, oncall)
    url = f"/safety/runs/{run.pk}/rollback/"
    assert login(client, oncall).get(url).status_code == 403
    assert client.post(f"{url}confirm/", {"confirm_target": demo_target.name}).status_code == 403
    client.logout()

    login(client, lead)
    assert client.get(url).status_code == 200
    client.post(f"{url}prepare/")
    preparation = wait_until(lambda: RollbackPreparation.objects.filter(run=run, finished_at__isnull=False).first(),
                             what="the rollback preparation")
    organizations = query(demo_target, "SELECT count(*) FROM public.organizations")[0][0]
    memberships = query(demo_target, "SELECT count(*) FROM public.organization_memberships")[0][0]
    assert preparation.data["counts"]["organizations"] == organizations
    assert preparation.data["counts"]["memberships"] == memberships == 200
    page = client.get(url).content.decode()
    assert f'<strong data-count="memberships">{memberships}</strong>' in page

    response = client.post(f"{url}confirm/", {"confirm_target": f" {demo_target.name}"}, follow=True)
    assert "does not match the target" in response.content.decode()
    assert not Attempt.objects.filter(step__run=run, step__key="rollback.emergency").exists()

    response = client.post(f"{url}confirm/", {"confirm_target": demo_target.name})
    assert response.status_code == 302 and response["Location"].endswith("/steps/rollback.emergency/")
    step = wait_step(run, "rollback.emergency")
    assert step.status == "succeeded"
    assert query(demo_target, "SELECT to_regclass('public.organizations')") == [(None,)]
    # No data assessment ran in this run: the verdict says there was nothing to compare with.
    assert Snapshot.objects.filter(run=run, label="after_rollback").count() == 1
    result = verdict(run)
    assert result["restored"] is None and result["message"] == NO_BEFORE
    page = client.get(url).content.decode()
    assert 'data-verdict="unknown"' in page and "No pre-migration state was recorded" in page


def test_rls_disable_shows_a_security_exposure_until_re_enabled(transactional_db, client, oncall, lead, demo_target):
    migrate(demo_target)
    run = engine.create_run(demo_target, oncall)
    login(client, oncall)
    page = client.get(f"/safety/runs/{run.pk}/partial/").content.decode()
    assert "Your role may not do this." in page  # on-call may not disable RLS (lead only)
    client.post(f"/safety/runs/{run.pk}/partial/rollback.rls_disable/",
                {"table": "audit_reports", "confirm_target": demo_target.name})
    assert not Attempt.objects.filter(step__run=run, step__key="rollback.rls_disable").exists()
    client.logout()

    login(client, lead)
    response = client.post(f"/safety/runs/{run.pk}/partial/rollback.rls_disable/",
                           {"table": "audit_reports", "confirm_target": "wrong"}, follow=True)
    assert "type the target name" in response.content.decode()
    client.post(f"/safety/runs/{run.pk}/partial/rollback.rls_disable/",
                {"table": "audit_reports", "confirm_target": demo_target.name})
    assert wait_step(run, "rollback.rls_disable").status == "succeeded"
    assert query(demo_target, "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.audit_reports'::regclass") \
        == [(False,)]
    for url in (f"/runs/{run.pk}/", "/"):
        page = client.get(url).content.decode()
        assert "SECURITY EXPOSURE" in page and 'data-exposed-table="audit_reports"' in page
        assert "disabled by lena" in page

    client.logout()
    login(client, oncall)  # re-enabling is open to on-call engineers
    client.post(f"/safety/runs/{run.pk}/partial/rollback.rls_enable/",
                {"table": "audit_reports", "confirm_target": demo_target.name})
    assert wait_step(run, "rollback.rls_enable").status == "succeeded"
    assert "SECURITY EXPOSURE" not in client.get(f"/runs/{run.pk}/").content.decode()
    assert "SECURITY EXPOSURE" not in client.get("/").content.decode()


def test_a_failed_step1_file_leaves_the_target_and_offers_retry_rollback_investigate(
        transactional_db, client, oncall, lead, demo_target, bundle_copy):
    edit(bundle_copy / "20250904000001_add_multi_tenant_organizations.sql",
         "ALTER TABLE public.audit_reports ADD COLUMN", "ALTER TABLE public.audit_reprots ADD COLUMN")
    fingerprint_before, _ = state(demo_target)
    run = engine.create_run(demo_target, oncall, bundle_dir=bundle_copy)
    drive(run.pk, through="pre.assessment", sign_off_as=oncall.pk, operator=oncall, timeout_per_step=120)
    engine.start_step(run, "step1.schema", oncall, confirm_target=demo_target.name)
    assert wait_step(run, "step1.schema").status == StepRun.Status.FAILED
    assert diff_fingerprints(fingerprint_before, state(demo_target)[0]) == []

    login(client, lead)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-step1-failed="step1.schema"' in page
    assert "audit_reprots" in page and "transaction, which was rolled back" in page
    assert f'/runs/{run.pk}/steps/step1.schema/start/' in page
    assert f'/runs/{run.pk}/steps/step1.schema/investigate/' in page
    assert f'/safety/runs/{run.pk}/rollback/' in page


def test_preflight_and_rehearsal_run_as_tasks_from_the_page(transactional_db, client, oncall, demo_target):
    login(client, oncall)
    client.post(f"/safety/targets/{demo_target.name}/preflight/")
    report = wait_until(lambda: PreflightReport.objects.filter(target=demo_target).first(), what="preflight")
    assert report.go is True and report.requested_by == oncall
    page = client.get(f"/safety/preflight/{report.pk}/").content.decode()
    assert "GO" in page and 'data-check="contract.table.public.generated_automations" data-status="go"' in page

    response = client.post(f"/safety/targets/{demo_target.name}/rehearse/")
    rehearsal = Rehearsal.objects.get(target=demo_target)
    assert response["Location"].endswith(f"/safety/rehearsals/{rehearsal.pk}/")
    wait_until(lambda: Rehearsal.objects.filter(pk=rehearsal.pk, status__in=["passed", "failed"]).exists(),
               what="the rehearsal")
    rehearsal.refresh_from_db()
    assert rehearsal.passed, rehearsal.report.get("failure")
    assert "Yes: fingerprint before forward = after rollback" in client.get(
        f"/safety/rehearsals/{rehearsal.pk}/").content.decode()


def test_dropping_the_organization_indexes_waits_out_a_busy_table_instead_of_failing(
        transactional_db, lead, demo_target):
    import psycopg

    from controlpanel.runs.models import StepEvent
    from controlpanel.targets.connection import dsn_for

    migrate(demo_target)
    run = engine.create_run(demo_target, lead)
    with psycopg.connect(dsn_for(demo_target)) as blocker:  # a transaction holding a conflicting lock
        blocker.execute("LOCK TABLE public.audit_reports IN SHARE MODE")
        engine.start_step(run, "rollback.drop_indexes", lead, confirm_target=demo_target.name)
        wait_until(lambda: StepEvent.objects.filter(attempt__step__run=run, data__lock_retry=True).exists(),
                   timeout=60, what="a lock-timeout retry")
    step = wait_step(run, "rollback.drop_indexes", timeout=120)
    assert step.status == "succeeded", step.attempts.latest("number").error
    assert query(demo_target, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                              "AND indexdef LIKE '%organization_id%' AND tablename = 'audit_reports'") == []

    with psycopg.connect(dsn_for(demo_target)) as blocker:
        # An old snapshot: CREATE INDEX CONCURRENTLY times out waiting for it after creating the index, INVALID.
        blocker.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        blocker.execute("SELECT count(*) FROM public.profiles")
        retries = StepEvent.objects.filter(data__lock_retry=True).count()
        engine.start_step(run, "rollback.create_indexes", lead, confirm_target=demo_target.name)
        wait_until(lambda: StepEvent.objects.filter(attempt__step__key="rollback.create_indexes",
                                                    attempt__step__run=run, data__lock_retry=True).exists(),
                   timeout=60, what="a retry")
    step = wait_step(run, "rollback.create_indexes", timeout=120)
    assert step.status == "succeeded", step.attempts.latest("number").error
    assert StepEvent.objects.filter(data__lock_retry=True).count() > retries
    assert query(demo_target, "SELECT count(*) FILTER (WHERE i.indisvalid), count(*) FROM pg_index i "
                              "WHERE i.indrelid = 'public.audit_reports'::regclass "
                              "AND pg_get_indexdef(i.indexrelid) LIKE '%organization_id%'") == [(1, 1)]
