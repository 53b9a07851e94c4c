"""The whole runbook on a seeded demo target, scripted through the CLI with a real worker."""

import json
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs.models import Attempt, Run, StepEvent
from controlpanel.targets.connection import dsn_for

pytestmark = pytest.mark.usefixtures("celery_worker")


def test_cli_runs_the_whole_runbook_and_reports_json(transactional_db, oncall, demo_target):
    out = StringIO()
    call_command("runbook", "start", "--target", demo_target.name, "--sign-off-as", oncall.username,
                 "--wait", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["status"] == "completed"
    forward = {s["key"]: s for s in data["steps"] if s["key"] in {m.key for m in RUNBOOK.main_steps()}}
    assert [k for k in forward] == [s.key for s in RUNBOOK.main_steps()]
    assert all(s["status"] == "succeeded" and s["started_at"] and s["finished_at"] for s in forward.values())

    run = Run.objects.get(pk=data["run"])
    validate = Attempt.objects.get(step__run=run, step__key="step2.validate")
    assert validate.result["categories"] and all(c["status"] == "PASSED" for c in validate.result["categories"])
    passed = StepEvent.objects.filter(attempt__step__run=run, kind="output", message__contains="All tests passed!")
    assert passed.exists()
    with psycopg.connect(dsn_for(demo_target)) as conn:
        nulls = conn.execute("SELECT count(*) FROM public.audit_reports WHERE organization_id IS NULL").fetchone()[0]
        members = conn.execute("SELECT count(*) FROM public.organization_memberships").fetchone()[0]
        users = conn.execute("SELECT count(*) FROM auth.users").fetchone()[0]
    assert nulls == 0 and members == users

    status_out = StringIO()
    call_command("runbook", "status", str(run.pk), "--json", stdout=status_out)
    assert json.loads(status_out.getvalue())["status"] == "completed"

    # --wait returned once the evidence collected after Step 5 was in: the report right after is final.
    report_out = StringIO()
    call_command("runbook", "report", str(run.pk), "--json", stdout=report_out)
    report = json.loads(report_out.getvalue())
    assert report["evidence_pending"] is None and not any(line["pending"] for line in report["scorecard"])
    assert all(report["reports"][kind] is not None for kind in ("rls_audit", "probes", "sla", "indexes"))


def test_cli_through_stops_after_the_named_step(transactional_db, oncall, demo_target):
    out = StringIO()
    call_command("runbook", "start", "--target", demo_target.name, "--through", "pre.assessment",
                 "--sign-off-as", oncall.username, "--wait", "--json", stdout=out)
    data = json.loads(out.getvalue())
    statuses = {s["key"]: s["status"] for s in data["steps"]}
    assert statuses["pre.assessment"] == "succeeded"
    assert statuses["step1.schema"] == "pending"
    assert data["status"] == "open"


def test_cli_refuses_sign_off_as_on_production(transactional_db, oncall, target_factory):
    from django.core.management.base import CommandError

    prod = target_factory(environment="production")
    with pytest.raises(CommandError, match="refused for production"):
        call_command("runbook", "start", "--target", prod.name, "--sign-off-as", oncall.username, "--wait")
    assert not Run.objects.filter(target=prod).exists()


def test_steps_lists_keys_in_order(db):
    out = StringIO()
    call_command("runbook", "steps", stdout=out)
    keys = [line.split("\t")[0] for line in out.getvalue().splitlines()]
    assert keys == [s.key for s in RUNBOOK.all_steps()]
