"""Typical operations as the same users before and after: timed as those users, nothing left behind."""

import psycopg
import pytest

from controlpanel.evidence.timing import TYPICAL, compare_operations, typical_operations
from controlpanel.monitoring.queries import pick_member
from controlpanel.targets.catalog import table_counts

from .conftest import migrate


def _heaviest(conn, n):
    return [r[0] for r in conn.execute("SELECT user_id FROM public.audit_reports GROUP BY 1 ORDER BY count(*) DESC, 1 "
                                       "LIMIT %s", (n,))]


def test_the_same_users_are_timed_before_and_after_and_nothing_is_written(demo_target, target_dsn):
    dsn = target_dsn(demo_target)
    with psycopg.connect(dsn, autocommit=True) as conn:
        users = _heaviest(conn, 3)
        counts = table_counts(conn, ["audit_reports", "automation_jobs"])
        before = typical_operations(conn, users, repeats=1)
    assert {t.key for t in before} == {key for key, _, _ in TYPICAL} and not [t for t in before if t.error]
    first = {t.key: t for t in before if t.user_id == str(users[0])}
    assert first["create_report"].rows == 1 and first["open_report"].rows == 1
    assert first["count_my_reports"].rows == 1  # one count row; RLS makes it the user's own count
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        after = typical_operations(conn, users, repeats=1)
        assert table_counts(conn, ["audit_reports", "automation_jobs"]) == counts
    rows = {r["key"]: r for r in compare_operations(before, after)}
    assert set(rows) == set(first) and all(r["users"] == 3 and r["worst_ratio"] is not None for r in rows.values())
    assert all(r["errors"] == [] for r in rows.values())


def test_the_health_check_member_is_the_heaviest_member_of_the_organization(migrated_target, target_dsn):
    with psycopg.connect(target_dsn(migrated_target), autocommit=True) as conn:
        organization, heavy = conn.execute(
            "SELECT r.organization_id::text, r.user_id::text FROM public.audit_reports r "
            "JOIN public.organization_memberships m ON m.user_id = r.user_id AND m.organization_id = r.organization_id "
            "AND m.status = 'active' AND m.role <> 'guest' GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1").fetchone()
        assert pick_member(conn, organization) == (organization, heavy)
        assert pick_member(conn, None) == (organization, heavy)


@pytest.mark.parametrize("shapes", [("minimal",), ("strict", "platform")], ids=lambda s: "+".join(s))
def test_the_sla_and_typical_operations_run_on_other_installations(shapes, target_factory, target_dsn):
    """Only the contract's columns (minimal); NOT NULL and CHECK columns and Supabase's privileges (strict+platform)."""
    from controlpanel.evidence.timing import measure_sla

    dsn = target_dsn(target_factory(shapes=shapes))
    with psycopg.connect(dsn, autocommit=True) as conn:
        users = _heaviest(conn, 2)
        before = typical_operations(conn, users, repeats=1)
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        result = measure_sla(conn, repeats=1)
        after = typical_operations(conn, users, repeats=1)
    assert not result.get("error") and [o["key"] for o in result["operations"] if o.get("error")] == [], [
        (o["key"], o["error"]) for o in result["operations"] if o.get("error")]
    rows = compare_operations(before, after)
    assert all(r["users"] == 2 and not r["errors"] for r in rows), rows
