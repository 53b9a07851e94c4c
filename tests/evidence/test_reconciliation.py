"""Snapshots before and after the real bundle, and reconciliation naming the rows that differ."""

from controlpanel.evidence.reconcile import compare_schema, reconcile, size_growth
from controlpanel.evidence.snapshots import collect_snapshot

from .conftest import execute, migrate, psql_file


def snapshot(dsn):
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return collect_snapshot(conn)


def test_a_correct_migration_reconciles(target_factory, target_dsn):
    dsn = target_dsn(target_factory())
    before = snapshot(dsn)
    assert before["tenancy"] is None and before["assessment"]["total_reports"] == 2000
    migrate(dsn)
    after = snapshot(dsn)
    result = reconcile(before, after)
    assert result["passed"], [c for c in result["checks"] if not c["passed"]]
    # Every user's reports in their own personal organization (at most 200 listed, the largest first).
    assert sum(r["reports"] for r in result["distribution"]) == 2000 and len(result["distribution"]) > 100
    growth = size_growth(before, after, 50.0)
    assert growth["passed"] and growth["database"]["growth_percent"] > 0


def test_a_data_migration_that_skips_rows_is_caught_with_the_rows_named(target_factory, target_dsn):
    dsn = target_dsn(target_factory())
    before = snapshot(dsn)
    migrate(dsn)
    skipped = [r[0] for r in execute(dsn, "SELECT id::text FROM public.audit_reports ORDER BY id LIMIT 3")]
    lost_users = [r[0] for r in execute(dsn, "SELECT id::text FROM auth.users ORDER BY id DESC LIMIT 2")]
    lost = execute(dsn, "SELECT id::text FROM public.generated_automations ORDER BY id LIMIT 1")[0][0]
    execute(dsn, "ALTER TABLE public.audit_reports ALTER COLUMN organization_id DROP NOT NULL")
    execute(dsn, "ALTER TABLE public.audit_reports DISABLE TRIGGER set_audit_reports_organization_id")
    execute(dsn, "UPDATE public.audit_reports SET organization_id = NULL WHERE id = ANY(%s::uuid[])", (skipped,))
    execute(dsn, "DELETE FROM public.organization_memberships WHERE user_id = ANY(%s::uuid[])", (lost_users,))
    execute(dsn, "DELETE FROM public.generated_automations WHERE id = %s", (lost,))
    result = reconcile(before, snapshot(dsn))
    checks = {c["check"]: c for c in result["checks"]}
    assert not result["passed"]
    orphans = checks["no tenant row without an organization"]
    assert not orphans["passed"] and sorted(orphans["detail"]["public.audit_reports"]["ids"]) == sorted(skipped)
    members = checks["every user has an organization membership"]
    assert not members["passed"] and sorted(members["detail"]["ids"]) == sorted(lost_users)
    counts = checks["every table's row count and identities unchanged"]
    [row] = counts["detail"]
    assert row["table"] == "public.generated_automations" and row["difference"] == -1
    assert row["rows"]["lost"] == [lost]


def test_the_rollback_restores_the_schema_exactly(target_factory, target_dsn):
    dsn = target_dsn(target_factory())
    before = snapshot(dsn)
    migrate(dsn)
    psql_file(dsn, "rollback-multi-tenant-organizations.sql")
    after = snapshot(dsn)
    assert compare_schema(before, after) == []
    assert reconcile(before, after)["checks"][0]["passed"]
