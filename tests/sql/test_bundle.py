"""Forward, validation, idempotency, no lost data and exact rollback of the SQL bundle (real PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlb_helpers import (
    CATEGORIES,
    FORWARD,
    ROLLBACK,
    VALIDATION,
    connect,
    content_checksums,
    migrate,
    present_tables,
    psql,
    results,
    validate,
)

from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts


def _snapshot(dbname):
    with connect(dbname) as conn:
        tables = present_tables(conn)
        return schema_fingerprint(conn), table_counts(conn, tables), content_checksums(conn, tables)


def test_forward_in_runbook_order_and_validation_passes(small_template, clone):
    db = clone(small_template)
    _, counts_before, sums_before = _snapshot(db)
    migrate(db)
    res, output = validate(db)
    assert res == {c: "PASSED" for c in CATEGORIES}, output
    assert "FAILED" not in output and "FAIL " not in output
    with connect(db) as conn:
        tables = present_tables(conn)
        # No lost data: same rows, same content (organization_id aside).
        assert table_counts(conn, tables) == counts_before
        assert content_checksums(conn, tables) == sums_before
        for table in tables[1:]:
            nulls = conn.execute(f"SELECT count(*) FROM {table} WHERE organization_id IS NULL").fetchone()[0]
            assert nulls == 0, table
        missing = conn.execute(
            "SELECT count(*) FROM auth.users u WHERE NOT EXISTS (SELECT 1 FROM public.organization_memberships m "
            "WHERE m.user_id = u.id AND m.status = 'active')").fetchone()[0]
        assert missing == 0
        progress = conn.execute("SELECT table_name, status, rows_done, rows_total FROM migration_progress").fetchall()
        assert {r[0] for r in progress} == {"organization_memberships", *(t.split(".")[1] for t in tables[1:])}
        assert all(r[1] == "done" for r in progress), progress
        by_table = {r[0]: r for r in progress}
        assert by_table["audit_reports"][2] == counts_before["public.audit_reports"]


def test_every_file_is_idempotent_after_success(small_template, clone):
    db = clone(small_template)
    migrate(db)
    with connect(db) as conn:
        fp = schema_fingerprint(conn)
        counts = table_counts(conn, present_tables(conn) + ["public.organizations", "public.organization_memberships"])
    for path in [*FORWARD, VALIDATION]:
        psql(db, path)
    with connect(db) as conn:
        assert diff_fingerprints(fp, schema_fingerprint(conn)) == []
        assert table_counts(conn, list(counts)) == counts
    res, output = validate(db)
    assert set(res.values()) == {"PASSED"}, output


def test_rollback_restores_schema_exactly_and_forward_works_again(small_template, clone):
    db = clone(small_template)
    fp_before, counts_before, sums_before = _snapshot(db)
    migrate(db)
    with connect(db) as conn:
        assert schema_fingerprint(conn) != fp_before  # the fingerprint does see the migration
    psql(db, ROLLBACK)
    fp_after, counts_after, sums_after = _snapshot(db)
    assert diff_fingerprints(fp_before, fp_after) == []
    assert fp_before == fp_after
    assert counts_after == counts_before
    assert sums_after == sums_before
    psql(db, ROLLBACK)  # idempotent
    assert _snapshot(db)[0] == fp_before
    with connect(db) as conn:
        statuses = {r[0] for r in conn.execute("SELECT status FROM migration_progress")}
        assert statuses == {"rolled_back"}
    # Forward again after the rollback: a fresh backfill (not the safety sweep), and everything passes.
    for path in FORWARD:
        assert "sweeping the table again" not in psql(db, path).stderr
    res, output = validate(db)
    assert set(res.values()) == {"PASSED"} and len(res) == len(CATEGORIES), output
    with connect(db) as conn:
        done = conn.execute("SELECT rows_done FROM migration_progress WHERE table_name = 'audit_reports'").fetchone()
        assert done[0] == counts_before["public.audit_reports"]


def test_rollback_after_partial_forward_runs(small_template, clone):
    """Rollback after only 0001, and after 0001+0002, still restores the baseline exactly."""
    for upto in (1, 2):
        db = clone(small_template)
        fp_before = _snapshot(db)[0]
        for path in FORWARD[:upto]:
            psql(db, path)
            psql(db, path)  # re-run of a completed file changes nothing and does not fail
        psql(db, ROLLBACK)
        assert diff_fingerprints(fp_before, _snapshot(db)[0]) == []


def test_bundle_without_optional_waitlist(nowaitlist_template, clone):
    db = clone(nowaitlist_template)
    fp_before, counts_before, _ = _snapshot(db)
    migrate(db)
    res, output = validate(db)
    assert set(res.values()) == {"PASSED"} and len(res) == len(CATEGORIES), output
    psql(db, ROLLBACK)
    fp_after, counts_after, _ = _snapshot(db)
    assert diff_fingerprints(fp_before, fp_after) == [] and counts_after == counts_before


BREAKAGES = {
    "RLS Policies": [
        "CREATE POLICY leak ON public.audit_reports FOR SELECT TO authenticated USING (true)",
    ],
    "Schema": ["ALTER VIEW public.audit_stats RESET (security_invoker)"],
    "Data Migration": [
        "DELETE FROM public.organization_memberships WHERE user_id = (SELECT min(id::text)::uuid FROM auth.users)",
    ],
    "Functions": ["GRANT EXECUTE ON FUNCTION public.get_user_organizations(uuid) TO anon"],
    "Performance/Indexes": ["DROP INDEX public.idx_audit_reports_organization_id_created_at"],
}


@pytest.mark.parametrize("category", sorted(BREAKAGES))
def test_validation_reports_failures(small_template, clone, category):
    db = clone(small_template)
    migrate(db)
    with connect(db) as conn:
        for statement in BREAKAGES[category]:
            conn.execute(statement)
    proc = psql(db, VALIDATION)
    res = results(proc.stderr)
    assert res[category] == "FAILED", proc.stderr
    assert len(res) == len(CATEGORIES)


def test_validation_fails_on_unmigrated_target(small_template, clone):
    db = clone(small_template)
    res = results(psql(db, VALIDATION).stderr)
    assert res == {c: "FAILED" for c in CATEGORIES}
