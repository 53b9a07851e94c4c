"""Preflight: the contract, squawk, operational guards and lock estimates, with real targets."""

import json
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command

from controlpanel.safety.lint import lint_bundle
from controlpanel.safety.models import PreflightReport
from controlpanel.safety.preflight import run_preflight
from controlpanel.targets.connection import dsn_for

from .conftest import edit, query


def _checks(report):
    return {c["key"]: c for c in report["checks"]}


def test_a_baseline_target_is_go_with_evidence(demo_target):
    report = run_preflight(demo_target)
    checks = _checks(report)
    assert report["go"] is True, [c for c in report["checks"] if c["status"] == "no-go"]
    assert checks["contract.table.public.generated_automations"]["status"] == "go"
    assert checks["contract.role.service_role"]["evidence"] == "present with BYPASSRLS"
    assert checks["ops.connections"]["detail"]["max_connections"] > 0
    assert "Not measurable from SQL" in checks["ops.disk"]["evidence"]
    assert checks["ops.replication"]["status"] == "go"


def test_lock_estimate_names_lock_table_and_size(demo_target):
    report = run_preflight(demo_target)
    add_column = [lock for entry in report["locks"] for lock in entry["locks"]
                  if lock["table"] == "public.audit_reports" and lock["why"] == "ADD COLUMN"]
    assert add_column and add_column[0]["mode"] == "ACCESS EXCLUSIVE" and add_column[0]["duration"] == "brief"
    rows = query(demo_target, "SELECT reltuples::bigint FROM pg_class WHERE oid = 'public.audit_reports'::regclass")
    assert add_column[0]["rows_estimate"] == rows[0][0] > 0
    assert add_column[0]["bytes"] > 0
    modes = {(lock["table"], lock["mode"], lock["why"]) for entry in report["locks"] for lock in entry["locks"]}
    assert ("public.audit_reports", "SHARE UPDATE EXCLUSIVE", "CREATE INDEX CONCURRENTLY") in modes
    assert ("public.audit_reports", "ACCESS EXCLUSIVE", "ENABLE ROW LEVEL SECURITY") in modes
    assert any(lock["mode"] == "ACCESS EXCLUSIVE" and lock["why"].startswith("CREATE POLICY")
               for entry in report["locks"] for lock in entry["locks"])


def test_a_missing_table_is_named_exactly_and_is_no_go(target_factory):
    target = target_factory()
    query(target, "DROP TABLE public.generated_automations CASCADE")
    report = run_preflight(target)
    assert report["go"] is False
    assert report["missing"] == ["missing: table public.generated_automations"]


def test_a_missing_column_and_function_are_named(target_factory):
    target = target_factory()
    query(target, "ALTER TABLE public.automation_jobs DROP COLUMN audit_report_id CASCADE;"
                  "DROP FUNCTION public.handle_updated_at() CASCADE")
    report = run_preflight(target)
    assert report["missing"] == ["missing column(s): public.automation_jobs.audit_report_id",
                                 "missing: function public.handle_updated_at()"]


def test_an_idle_transaction_holding_a_tenant_table_is_no_go(demo_target):
    with psycopg.connect(dsn_for(demo_target)) as idle:
        idle.execute("SELECT count(*) FROM public.audit_reports").fetchone()  # leaves the transaction open
        report = run_preflight(demo_target)
    sessions = _checks(report)["ops.sessions"]
    assert report["go"] is False and sessions["status"] == "no-go"
    assert any("audit_reports" in s["tables"] and s["state"].startswith("idle in transaction")
               for s in sessions["detail"]["sessions"])


def test_squawk_findings_are_listed_per_file_and_statement(bundle_copy):
    edit(bundle_copy / "20250904000001_add_multi_tenant_organizations.sql", "COMMIT;",
         "CREATE INDEX audit_reports_title_idx ON public.audit_reports (title);\nCOMMIT;")
    lint = lint_bundle(bundle_copy)
    assert lint["ran"] is True
    findings = next(f for f in lint["files"] if f["file"].startswith("20250904000001"))["findings"]
    concurrent = [f for f in findings if f["rule"] == "require-concurrent-index-creation"]
    assert concurrent and concurrent[0]["statement"].startswith("CREATE INDEX audit_reports_title_idx")
    assert concurrent[0]["statement_index"] > 1


def test_cli_prints_json_and_exits_non_zero_on_no_go(target_factory, bundle_copy):
    target = target_factory()
    out = StringIO()
    call_command("runbook", "preflight", "--target", target.name, "--json", stdout=out)
    assert json.loads(out.getvalue())["go"] is True
    query(target, "DROP TABLE public.audit_reports CASCADE")
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("runbook", "preflight", "--target", target.name, "--json", "--bundle", str(bundle_copy),
                     stdout=out)
    assert exited.value.code == 1
    data = json.loads(out.getvalue())
    assert data["go"] is False and "missing: table public.audit_reports" in data["missing"]
    assert PreflightReport.objects.get(pk=data["report"]).go is False
