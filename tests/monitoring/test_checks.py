"""A health check of a real target: figures, storage, not-migrated and unreachable targets, the CLI."""

import json
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command

from controlpanel.monitoring.checks import check_and_store
from controlpanel.monitoring.models import HealthCheck
from controlpanel.targets.connection import dsn_for
from controlpanel.targets.models import Target

from .conftest import ALL_ORGANIZATIONS


def target_scalar(target, query):
    with psycopg.connect(dsn_for(target)) as conn:
        return conn.execute(query).fetchone()[0]


def test_it_checks_a_migrated_target(migrated_target):
    check = check_and_store(migrated_target)
    f = check.figures
    assert HealthCheck.objects.filter(target=migrated_target).count() == 1
    assert f["migrated"] is True
    assert f["organizations"] == ALL_ORGANIZATIONS
    assert f["active_memberships"] == target_scalar(
        migrated_target, "SELECT count(*) FROM public.organization_memberships WHERE status = 'active'")
    assert f["organization_stats"]["count"] == ALL_ORGANIZATIONS
    assert f["organization_stats"]["reports"]["total"] == target_scalar(
        migrated_target, "SELECT count(*) FROM public.audit_reports")
    # The weekly EXPLAIN ANALYZE: as a member RLS restricts to the organization, as service role too (same filter).
    member, service = f["latency"]["member"], f["latency"]["service_role"]
    expected_rows = target_scalar(migrated_target, "SELECT count(*) FROM public.audit_reports r JOIN "
                                                   f"public.organizations o ON o.id = r.organization_id "
                                                   f"WHERE o.slug = '{f['latency']['organization']}'")
    assert member["rows"] == service["rows"] == expected_rows > 0
    assert member["execution_ms"] > 0 and member["role"] == "authenticated"
    assert any(i["index"] == "idx_audit_reports_organization_id_created_at" for i in f["indexes"])
    assert f["database_bytes"] > 0 and "audit_reports" in f["table_bytes"]
    assert f["connections"]["total"] >= 1
    assert f["rls_audit"]["available"] is True
    assert f["isolation"]["available"] is True and f["isolation"]["ok"] is True, f["isolation"]["failures"]
    assert not f.get("errors"), f.get("errors")
    assert check.ok, check.alerts


def test_a_check_leaves_the_target_unchanged(migrated_target):
    before = target_scalar(migrated_target, "SELECT count(*) FROM public.audit_reports")
    orgs = target_scalar(migrated_target, "SELECT count(*) FROM public.organizations")
    check_and_store(migrated_target)
    assert target_scalar(migrated_target, "SELECT count(*) FROM public.audit_reports") == before
    assert target_scalar(migrated_target, "SELECT count(*) FROM public.organizations") == orgs


def test_a_target_not_migrated_yet_gets_a_check_that_says_so(target_factory):
    target = target_factory()
    check = check_and_store(target)
    assert check.ok and check.alerts == []
    assert check.figures["migrated"] is False
    assert "Not migrated yet" in check.figures["message"]
    assert check.figures["database_bytes"] > 0
    assert "organizations" not in check.figures


def test_an_unreachable_target_is_an_alert_not_an_exception(db):
    target = Target.objects.create(name="nowhere", environment="staging", dsn_env_var="CP_TEST_UNREACHABLE_DSN")
    check = check_and_store(target)
    assert not check.ok
    assert [a["code"] for a in check.alerts] == ["unreachable"]
    assert "127.0.0.1:1" not in json.dumps(check.figures)  # the DSN is never stored


def test_the_command_runs_one_check_and_prints_its_figures_as_json(migrated_target):
    out = StringIO()
    call_command("healthcheck", "--target", migrated_target.name, "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["target"] == migrated_target.name and data["ok"] is True
    assert data["figures"]["organizations"] == ALL_ORGANIZATIONS
    assert HealthCheck.objects.get(pk=data["check"]).figures["organizations"] == ALL_ORGANIZATIONS


def test_the_command_refuses_an_unknown_target(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no target named"):
        call_command("healthcheck", "--target", "missing", "--json")


def test_a_check_belongs_to_the_targets_current_run_and_shows_on_its_page(client, oncall, migrated_target):
    from controlpanel.runs import engine

    run = engine.create_run(migrated_target, oncall)
    check = check_and_store(migrated_target)
    assert check.run == run
    client.force_login(oncall)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-panel="monitoring"' in page
    assert page.count('data-chart="latency"') == 1 and page.count("data-point") >= 3  # 2 latency + 1 size
