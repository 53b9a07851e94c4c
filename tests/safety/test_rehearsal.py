"""Rehearsal on a disposable copy: the project's bundle passes; broken bundles and targets are caught."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from controlpanel.runs import engine, gates
from controlpanel.runs.models import GateOverride
from controlpanel.safety.copies import copy_prefix
from controlpanel.safety.models import Rehearsal

from .conftest import edit, query

SCHEMA = "20250904000001_add_multi_tenant_organizations.sql"


pytestmark = pytest.mark.usefixtures("small_access_sample")

def rehearse_cli(target, bundle=None) -> tuple[int, dict]:
    out = StringIO()
    args = ["runbook", "rehearse", "--target", target.name, "--json"]
    if bundle:
        args += ["--bundle", str(bundle)]
    try:
        call_command(*args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue())


def no_copy_left(target) -> bool:
    """Only this session's copies: another session's rehearsal may be running on the same server."""
    assert "_t" in copy_prefix()
    return not query(target, "SELECT datname FROM pg_database WHERE datname LIKE %s", (copy_prefix() + "%",))


def test_the_projects_bundle_passes_on_a_full_copy(demo_target):
    code, data = rehearse_cli(demo_target)
    assert code == 0, data["failure"]
    assert data["passed"] is True and data["copy"]["schema_only"] is False and data["copy"]["dropped"] is True
    runs = [(s["phase"], s["file"][:14], s["run"], s["ok"]) for s in data["steps"]]
    for prefix in ("20250904000001", "20250904000002", "20250904000003"):
        assert ("forward", prefix, 1, True) in runs and ("forward", prefix, 2, True) in runs
    validation = next(s for s in data["steps"] if s["phase"] == "validation")
    assert validation["categories"] and all(c["status"] == "PASSED" for c in validation["categories"])
    assert data["fingerprint"] == {"restored": True, "diff": []}
    assert data["counts"]["equal"] is True and data["counts"]["tables"]["public.audit_reports"][0] == 2000
    assert data["lock_estimate"] and all(p in data["phases"] for p in ("copy", "forward", "validation", "rollback"))
    backfill = next(s for s in data["steps"] if s["file"].startswith("20250904000003") and s["run"] == 1)
    assert backfill["locks_sampled"]["samples"] > 0 and backfill["locks_sampled"]["held"]
    # Its rows are written inside procedures (statement row counts say 0): the row versions it made count them.
    assert backfill["rows_written"] >= 2000 + 200, backfill["rows_written"]
    stored = Rehearsal.objects.get(pk=data["rehearsal"])
    assert stored.passed and stored.checksums == data["checksums"]
    # The whole evidence suite ran on the copy, each criterion met, the access diff after every forward file.
    assert stored.evidence_passed is True and data["evidence_passed"] is True
    keys = {v["key"] for v in stored.verdicts}
    assert keys >= {"data", "rewrite", "writer_blocks", "strong_locks", "duration", "access", "probes", "writer",
                    "reconciliation", "contents", "role_model", "rls_audit", "sla", "workers", "size", "validation"}
    assert [v["stage"] for v in stored.verdicts if v["key"] == "access"] == [
        f"after {name}" for name in ("20250904000001_add_multi_tenant_organizations.sql",
                                     "20250904000002_add_organization_rls_policies.sql")] + ["after the forward files"]
    assert all(v["passed"] for v in stored.verdicts if v["blocking"]), [v for v in stored.verdicts if not v["passed"]]
    assert no_copy_left(demo_target)
    # The target itself was not touched.
    assert query(demo_target, "SELECT to_regclass('public.organizations')") == [(None,)]


def test_a_typo_in_an_object_name_is_caught_with_file_statement_and_error(demo_target, bundle_copy):
    edit(bundle_copy / SCHEMA, "ALTER TABLE public.audit_reports ADD COLUMN",
         "ALTER TABLE public.audit_reprots ADD COLUMN")
    code, data = rehearse_cli(demo_target, bundle_copy)
    assert code == 1 and data["passed"] is False
    failure = data["failure"]
    assert failure["phase"] == "forward" and failure["file"] == SCHEMA and failure["run"] == 1
    assert failure["message"] == 'relation "public.audit_reprots" does not exist'
    assert "public.audit_reprots" in failure["statement"] and failure["statement_index"] > 1
    assert failure["sqlstate"] == "42P01"
    assert no_copy_left(demo_target)


def test_a_create_trigger_without_a_guard_is_caught_on_the_second_run(demo_target, bundle_copy):
    edit(bundle_copy / SCHEMA, "CREATE OR REPLACE TRIGGER set_organizations_updated_at",
         "CREATE TRIGGER set_organizations_updated_at")
    code, data = rehearse_cli(demo_target, bundle_copy)
    assert code == 1
    failure = data["failure"]
    assert failure["file"] == SCHEMA and failure["run"] == 2
    assert failure["message"].startswith(f"Not idempotent: the second run of {SCHEMA} failed")
    assert 'trigger "set_organizations_updated_at"' in failure["message"] and "already exists" in failure["message"]
    assert "CREATE TRIGGER set_organizations_updated_at" in failure["statement"]


def test_a_target_missing_a_prerequisite_table_is_caught(target_factory):
    target = target_factory()
    query(target, "DROP TABLE public.generated_automations CASCADE")
    code, data = rehearse_cli(target)
    assert code == 1
    assert data["failure"]["phase"] == "contract"
    assert data["failure"]["missing"] == ["missing: table public.generated_automations"]
    assert "public.generated_automations" in data["failure"]["message"]
    assert no_copy_left(target)


def test_production_rehearses_a_schema_only_copy_and_passes_the_gate(target_factory, oncall, lead):
    prod = target_factory(environment="production")
    run = engine.create_run(prod, oncall)
    assert any("no passed rehearsal" in reason for reason in gates.production_gates(run))

    code, data = rehearse_cli(prod)
    assert code == 0, data["failure"]
    assert data["copy"]["schema_only"] is True and "--schema-only" in data["copy"]["method"]
    # No customer row was read: the copy holds only the invented rows.
    assert data["counts"]["tables"]["public.audit_reports"][0] == data["copy"]["synthetic_rows"]["counts"][
        "public.audit_reports"] != 2000
    assert not any("rehearsal" in reason for reason in gates.production_gates(run))


def test_a_lead_override_passes_the_rehearsal_gate(target_factory, oncall, lead):
    prod = target_factory(environment="production")
    run = engine.create_run(prod, oncall)
    Rehearsal.objects.create(target=prod, bundle_dir=run.bundle_dir, checksums={"other": "bundle"}, passed=True,
                             status=Rehearsal.Status.PASSED)
    reasons = gates.production_gates(run)
    assert any("rehearsed other bundle checksums" in reason for reason in reasons)
    with pytest.raises(engine.StepRefused):
        engine.record_override(run, GateOverride.Gate.REHEARSAL, oncall, "on-call cannot override")
    engine.record_override(run, GateOverride.Gate.REHEARSAL, lead, "rehearsed by hand on a restored backup")
    assert not any("rehearsal" in reason for reason in gates.production_gates(run))
