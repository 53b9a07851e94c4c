"""RLS audit, isolation probes and SLA timing on real migrated targets: correct, then deliberately broken."""

import threading
import time

import psycopg
import pytest

from controlpanel.evidence.locks import judge_lock_samples
from controlpanel.evidence.lockwatch import LockSummary, sample_locks
from controlpanel.evidence.probes import probe_user, run_isolation_probes
from controlpanel.evidence.rls_audit import audit_rls, blocking
from controlpanel.evidence.timing import measure_sla
from controlpanel.targets.catalog import schema_fingerprint, table_counts

from .conftest import execute

TABLES = ("auth.users", "profiles", "audit_reports", "automation_jobs", "generated_automations",
          "organizations", "organization_memberships", "waitlist")


def connect(dsn):
    return psycopg.connect(dsn, autocommit=True)


def failures(matrix, status=None, table=None, action=None):
    return [c for c in matrix.failures if (status is None or c["status"] == status)
            and (table is None or c["table"] == table) and (action is None or c["action"].startswith(action))]


def test_correct_migration_passes_audit_probes_and_sla_and_leaves_nothing_behind(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    with connect(dsn) as conn:
        fingerprint, counts = schema_fingerprint(conn), table_counts(conn, TABLES)
        findings = audit_rls(conn)
        matrix = run_isolation_probes(conn)
        sla = measure_sla(conn, repeats=3)
        assert schema_fingerprint(conn) == fingerprint
        assert table_counts(conn, TABLES) == counts
    assert blocking(findings) == [], [f.as_dict() for f in blocking(findings)]
    assert matrix.passed, matrix.failures
    assert len({m["organization_id"] for u in matrix.users for m in u["memberships"]}) >= 4
    actions = {c["action"] for c in matrix.cells}
    assert {"read", "read view", "insert into another organization", "move own row to another organization",
            "add self to another organization as admin", "raise own role to admin"} <= actions
    assert any(c["subject"] == "anon" for c in matrix.cells) and any(c["subject"] == "service_role"
                                                                     for c in matrix.cells)
    assert sla["passed"], sla
    assert {o["key"] for o in sla["operations"]} >= {"list_reports", "list_jobs", "report_by_id",
                                                     "organization_stats", "weekly_explain"}


def test_probe_results_never_contain_the_dsn(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    with connect(dsn) as conn:
        text = repr(run_isolation_probes(conn).as_dict()) + repr(measure_sla(conn, repeats=1))
    assert dsn not in text and "postgresql://" not in text


def test_a_policy_letting_one_organization_read_anothers_rows_is_a_leak(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    execute(dsn, "CREATE POLICY cross_org_read ON public.audit_reports FOR SELECT TO authenticated "
                 "USING (organization_id IS NOT NULL)")
    with connect(dsn) as conn:
        matrix = run_isolation_probes(conn)
    leaks = failures(matrix, "leak", "audit_reports", "read")
    assert leaks and all("other organizations visible" in c["detail"] for c in leaks)
    assert not failures(matrix, table="automation_jobs")


def test_a_per_row_function_in_a_policy_breaks_the_sla_and_is_flagged(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    execute(dsn, """
        CREATE FUNCTION public.slow_is_member(p_org uuid) RETURNS boolean
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = '' AS $$
        BEGIN
            PERFORM pg_catalog.pg_sleep(0.001);
            RETURN p_org = ANY (ARRAY(SELECT public.user_organization_ids()));
        END $$;
        GRANT EXECUTE ON FUNCTION public.slow_is_member(uuid) TO authenticated;
        DROP POLICY mt_audit_reports_select ON public.audit_reports;
        CREATE POLICY slow_select ON public.audit_reports FOR SELECT TO authenticated
            USING (public.slow_is_member(organization_id));
    """)
    with connect(dsn) as conn:
        findings = audit_rls(conn)
        sla = measure_sla(conn, repeats=2)
    per_row = [f for f in findings if f.code == "per_row_function"]
    assert per_row and per_row[0].severity == "high" and "slow_is_member" in per_row[0].message
    assert not sla["passed"]
    slow = {o["key"]: o for o in sla["operations"]}["count_reports"]
    assert slow["worst_ms"] > 500 and "slow_is_member" in slow["plan"]


def test_a_table_left_without_rls_is_critical(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    execute(dsn, "ALTER TABLE public.automation_jobs DISABLE ROW LEVEL SECURITY")
    with connect(dsn) as conn:
        findings = audit_rls(conn)
        matrix = run_isolation_probes(conn)
    critical = [f for f in findings if f.code == "table_without_rls"]
    assert [f.object for f in critical] == ["public.automation_jobs"] and critical[0].severity == "critical"
    assert "ENABLE ROW LEVEL SECURITY" in critical[0].fix
    assert failures(matrix, "leak", "automation_jobs", "read")


def test_a_view_without_security_invoker_bypasses_rls(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    execute(dsn, "ALTER VIEW public.audit_stats RESET (security_invoker)")
    with connect(dsn) as conn:
        findings = audit_rls(conn)
        matrix = run_isolation_probes(conn)
    views = [f for f in findings if f.code == "view_bypasses_rls"]
    assert [f.object for f in views] == ["public.audit_stats"] and views[0].severity == "critical"
    assert failures(matrix, "leak", "audit_stats", "read view")


def test_a_membership_policy_querying_its_own_table_is_a_failure_not_a_skip(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    execute(dsn, """
        DROP POLICY mt_organization_memberships_select ON public.organization_memberships;
        CREATE POLICY recursive_select ON public.organization_memberships FOR SELECT TO authenticated
            USING (organization_id IN (SELECT m.organization_id FROM public.organization_memberships m
                                       WHERE m.user_id = (SELECT auth.uid())));
    """)
    with connect(dsn) as conn:
        fingerprint = schema_fingerprint(conn)
        matrix = run_isolation_probes(conn)
        assert schema_fingerprint(conn) == fingerprint
    errors = failures(matrix, "error", "organization_memberships", "read")
    assert errors and all("42P17" in c["detail"] for c in errors)
    # One failing probe hides no other: the other tables were still probed for every user.
    assert {c["table"] for c in matrix.cells if c["status"] == "ok" and c["action"] == "read"} >= {
        "audit_reports", "automation_jobs"}
    assert not matrix.passed


def test_an_insert_policy_letting_users_join_any_organization_as_admin_is_an_escalation(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    execute(dsn, """
        DROP POLICY mt_organization_memberships_insert ON public.organization_memberships;
        CREATE POLICY self_join ON public.organization_memberships FOR INSERT TO authenticated
            WITH CHECK (user_id = (SELECT auth.uid()));
    """)
    with connect(dsn) as conn:
        counts = table_counts(conn, TABLES)
        matrix = run_isolation_probes(conn)
        user = matrix.users[0]["user_id"]
        single = probe_user(conn, user)
        assert table_counts(conn, TABLES) == counts
    escalations = failures(matrix, "escalation", "organization_memberships", "add self")
    assert escalations and {c["user_id"] for c in escalations} >= {user}
    assert any(c["status"] == "escalation" and c["action"].startswith("add self") for c in single)


def test_an_exclusive_lock_with_a_waiting_writer_fails_the_lock_judgement(migrated_target, target_dsn):
    dsn = target_dsn(migrated_target)
    holder, writer, monitor = connect(dsn), connect(dsn), connect(dsn)
    try:
        holder.autocommit = False
        holder.execute("LOCK TABLE public.audit_reports IN ACCESS EXCLUSIVE MODE")
        blocked = threading.Thread(target=lambda: writer.execute(
            "UPDATE public.audit_reports SET is_favorite = is_favorite WHERE id = "
            "(SELECT id FROM public.audit_reports LIMIT 1)"), daemon=True)
        blocked.start()
        summary = LockSummary()
        for _ in range(3):
            time.sleep(0.7)
            summary.add(sample_locks(monitor, holder.info.backend_pid))
        holder.rollback()
        blocked.join(10)
    finally:
        for conn in (holder, writer, monitor):
            conn.close()
    data = summary.as_dict()
    assert data["samples_with_waiters"] >= 2 and data["longest_wait_seconds"] > 1.0
    verdict = judge_lock_samples([data], threshold=1.0)
    assert not verdict["passed"] and verdict["worst_sample"]["blocked_by_migration"]
    assert judge_lock_samples([{"samples": 3, "samples_with_waiters": 0, "longest_wait_seconds": 0.0}])["passed"]


@pytest.mark.parametrize("sample", [None])
def test_probes_need_a_migrated_target(target_factory, target_dsn, sample):
    target = target_factory()
    with connect(target_dsn(target)) as conn:
        matrix = run_isolation_probes(conn, sample_users=sample)
    assert not matrix.passed and "migration" in matrix.setup["error"]
