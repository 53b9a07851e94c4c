"""The whole runbook through the panel on Supabase's privileges (platform + strict), with a real worker.

The panel connects as the zoo's non-superuser migration role throughout: staging, then production behind its
gates, the emergency rollback (fingerprint exact), both partial rollbacks and the rehearsal.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from controlpanel.leads import approvals
from controlpanel.leads.models import Approval
from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs import engine, gates
from controlpanel.runs.driver import DriveStopped, drive
from controlpanel.runs.models import Run
from controlpanel.safety.models import PreflightReport, Rehearsal
from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts
from controlpanel.targets.connection import target_connection
from tests.helpers.platform import as_admin
from tests.helpers.waiting import wait_step, wait_until

pytestmark = pytest.mark.usefixtures("celery_worker")

SHAPES = ("platform", "strict")
TABLES = ["auth.users", "public.profiles", "public.audit_reports", "public.automation_jobs",
          "public.generated_automations"]


def state(target):
    with target_connection(target) as conn:
        return schema_fingerprint(conn), table_counts(conn, TABLES)


def test_staging_runs_the_whole_runbook_and_the_emergency_rollback_restores_it_exactly(
        transactional_db, oncall, lead, target_factory):
    staging = target_factory(name="plat-staging", environment="staging", shapes=SHAPES, users=60, reports=400)
    assert as_admin(staging, "SELECT rolsuper FROM pg_roles WHERE rolname = %s",
                    (staging.built.roles.migration,)) == [(False,)]
    fingerprint_before, counts_before = state(staging)
    out = StringIO()
    call_command("runbook", "start", "--target", staging.name, "--sign-off-as", oncall.username, "--wait",
                 "--json", stdout=out)
    data = json.loads(out.getvalue())
    statuses = {s["key"]: s["status"] for s in data["steps"]}
    assert data["status"] == "completed", statuses
    assert all(statuses[s.key] == "succeeded" for s in RUNBOOK.main_steps())
    run = Run.objects.get(pk=data["run"])
    validate = run.steps.get(key="step2.validate").attempts.latest("number")
    assert validate.result["categories"] and all(c["status"] == "PASSED" for c in validate.result["categories"])
    assert run.steps.get(key="pre.backup").attempts.latest("number").result["bytes"] > 0  # pg_dump as the role
    _the_panels_own_reads_work(staging)

    out = StringIO()
    call_command("runbook", "rollback", str(run.pk), "--confirm", staging.name, "--as", lead.username, "--json",
                 stdout=out)
    rollback = json.loads(out.getvalue())
    assert rollback["status"] == "succeeded", rollback
    assert rollback["verdict"]["restored"] is True and rollback["verdict"]["fingerprint_diff"] == []
    fingerprint_after, counts_after = state(staging)
    assert diff_fingerprints(fingerprint_before, fingerprint_after) == [] and counts_after == counts_before


def _the_panels_own_reads_work(target):
    """Health check, support lookup and troubleshooting as the migration role: figures, not errors."""
    from controlpanel.monitoring import checks
    from controlpanel.monitoring.troubleshooting import collect_troubleshooting
    from controlpanel.support.lookups import find_person, lookup_connection, users_without_membership

    figures = checks.collect(target)
    assert "unreachable" not in figures and figures["connections"]["total"] >= 1, figures
    assert not [k for k, v in figures.items() if isinstance(v, dict) and v.get("error")], figures
    [[email]] = as_admin(target, "SELECT email FROM auth.users WHERE email IS NOT NULL ORDER BY email LIMIT 1")
    with lookup_connection(target) as conn:
        person = find_person(conn, email)
        assert person["found"] and person["memberships"], person
        assert users_without_membership(conn)["count"] == 0
    with target_connection(target) as conn:
        report = collect_troubleshooting(conn, target)
    failed = [s for s in report["sections"] if s.get("error")]
    assert report["sections"] and not failed, failed


def _walk_as_people(run, person):
    """Production: a person ticks, signs off and starts each step (no --sign-off-as there)."""
    for step_def in RUNBOOK.main_steps():
        for item in step_def.items:
            if not item.verifier and not run.ticks.filter(step_key=step_def.key, item_key=item.key).exists():
                engine.tick(run, step_def.key, item.key, person, note="ticked by the on-call engineer")
    while True:
        try:
            return drive(run.pk, operator=person, timeout_per_step=300)
        except DriveStopped as stopped:
            key = str(stopped).split()[0]
            if "manual sign-off" not in str(stopped):
                raise
            engine.sign_off(run, key, person, note="deployed by hand")


def test_production_opens_its_gates_with_evidence_then_runs_and_both_partial_rollbacks_work(
        transactional_db, client, oncall, lead, cast, target_factory):
    staging = target_factory(name="plat-stage2", environment="staging", shapes=SHAPES, users=60, reports=400)
    drive(engine.create_run(staging, oncall).pk, through="step2.validate", sign_off_as=oncall.pk, operator=oncall,
          timeout_per_step=300)
    prod = target_factory(name="plat-prod", environment="production", shapes=SHAPES, users=60, reports=400)
    run = engine.create_run(prod, oncall)
    closed = gates.production_gates(run)
    assert not any("staging" in r.lower() for r in closed), closed
    assert any("preflight" in r.lower() for r in closed) and any("rehearsal" in r.lower() for r in closed)

    # Preflight and rehearsal as the page starts them: tasks in the worker, as the migration role.
    assert client.login(username=oncall.username, password=f"{oncall.username}-pass-123")
    client.post(f"/safety/targets/{prod.name}/preflight/")
    report = wait_until(lambda: PreflightReport.objects.filter(target=prod).first(), timeout=120, what="preflight")
    assert report.go is True, [c for c in report.data["checks"] if c["status"] == "no-go"]
    privileges = next(c for c in report.data["checks"] if c["key"] == "privileges")
    assert prod.built.roles.migration in privileges["evidence"]
    client.post(f"/safety/targets/{prod.name}/rehearse/")
    rehearsal = wait_until(lambda: Rehearsal.objects.filter(target=prod, status__in=["passed", "failed"]).first(),
                           timeout=300, what="the rehearsal")
    assert rehearsal.passed, rehearsal.report.get("failure")
    assert rehearsal.report["copy"]["schema_only"] is True
    assert list(rehearsal.report["copy"]["privileges"]["stand_ins"]) == [prod.built.roles.auth_admin]

    approval = approvals.request_approval(run, Approval.Action.STEP1, oncall, note="window open")
    approvals.decide(approval, lead, approve=True, seen_digest=run.checksum_digest, reason="staging and evidence ok")
    assert gates.production_gates(run) == []
    assert _walk_as_people(run, oncall) == Run.Status.COMPLETED

    for key, params in (("rollback.rls_disable", {"table": "audit_reports"}),
                        ("rollback.rls_enable", {"table": "audit_reports"}),
                        ("rollback.drop_indexes", {}), ("rollback.create_indexes", {})):
        # Evidence that a step's end queues (snapshots, access diff, RLS audit) reads the tables in long
        # transactions: DROP INDEX CONCURRENTLY would wait for them past its lock timeout.
        wait_until(lambda: not as_admin(prod, "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                                              "AND pid <> pg_backend_pid() AND state <> 'idle'"),
                   timeout=300, what="the evidence tasks to finish")
        engine.start_step(run, key, lead, params=params, confirm_target=prod.name)
        step = wait_step(run, key, timeout=120)
        assert step.status == "succeeded", (key, step.attempts.latest("number").error)
        if key == "rollback.rls_disable":
            assert as_admin(prod, "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.audit_reports'::regclass") \
                == [(False,)]
    assert as_admin(prod, "SELECT relrowsecurity FROM pg_class WHERE oid = 'public.audit_reports'::regclass") == [
        (True,)]
