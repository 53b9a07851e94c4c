"""The Workers database check (the runbook's test-organization-database.js), done in Python.

Connects to the target, becomes service_role (what the Workers' service key maps to) and exercises the
organization-aware functions inside a transaction that is rolled back, so nothing is left behind.
"""

import uuid

import psycopg

from .base import StepFailed


def _checks(conn):
    """Yields (name, ok, detail) for each check; runs as service_role inside the caller's transaction."""
    member = conn.execute(
        "SELECT m.user_id, m.organization_id FROM public.organization_memberships m "
        "WHERE m.status = 'active' AND m.role IN ('admin', 'member') ORDER BY m.created_at LIMIT 1"
    ).fetchone()
    if member is None:
        yield "an active member exists", False, "no active admin/member in organization_memberships"
        return
    user_id, org_id = member
    yield "an active member exists", True, f"user {user_id}"
    orgs = conn.execute("SELECT organization_id, role FROM public.get_user_organizations(%s)", (user_id,)).fetchall()
    yield "get_user_organizations", any(o[0] == org_id for o in orgs), f"{len(orgs)} organization(s)"
    allowed = conn.execute("SELECT public.validate_organization_access(%s, %s)", (user_id, org_id)).fetchone()[0]
    yield "validate_organization_access (own organization)", allowed is True, str(allowed)
    denied = conn.execute("SELECT public.validate_organization_access(%s, %s)", (user_id, uuid.uuid4())).fetchone()[0]
    yield "validate_organization_access (other organization)", denied is False, str(denied)
    # A scratch organization (rolled back with everything else) makes the listing check exact on any data.
    scratch = conn.execute(
        "INSERT INTO public.organizations (name, slug) VALUES ('Workers check', %s) RETURNING id",
        (f"workers-check-{uuid.uuid4().hex[:12]}",),
    ).fetchone()[0]
    conn.execute("INSERT INTO public.organization_memberships (organization_id, user_id, role, status) "
                 "VALUES (%s, %s, 'member', 'active')", (scratch, user_id))
    job_id = conn.execute("SELECT public.create_organization_automation_job(%s, %s, 'n8n')",
                          (user_id, scratch)).fetchone()[0]
    yield "create_organization_automation_job", job_id is not None, f"job {job_id}"
    jobs = [r[0] for r in conn.execute(
        "SELECT id FROM public.get_organization_automation_jobs(%s, NULL, 50, 0)", (scratch,)).fetchall()]
    yield "get_organization_automation_jobs lists exactly the new job", jobs == [job_id], f"{len(jobs)} job(s)"
    stats = conn.execute("SELECT total_jobs FROM public.get_organization_usage_stats(%s)", (scratch,)).fetchone()
    yield "get_organization_usage_stats", bool(stats and stats[0] == 1), f"total_jobs={stats[0] if stats else None}"
    rows = conn.execute("SELECT count(*) FROM public.organization_stats").fetchone()[0]
    yield "organization_stats readable", rows >= 1, f"{rows} organization(s)"
    bypass = conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    yield "service_role bypasses RLS", bypass is True, f"current_user BYPASSRLS={bypass}"


def workers_checks(conn, emit=None) -> list[dict]:
    """Every check as {"check", "ok", "detail"}, as service_role in a transaction that is rolled back (the step and
    the rehearsal both call this); a database error ends the list with a failed "database call" entry."""
    results = []
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE service_role")
            conn.execute("SELECT set_config('request.jwt.claims', '{\"role\": \"service_role\"}', true)")
            for name, ok, detail in _checks(conn):
                results.append({"check": name, "ok": ok, "detail": detail})
                if emit:
                    emit(f"{'✅' if ok else '❌'} {name}: {detail}")
    except psycopg.Error as exc:
        message = (exc.diag.message_primary or str(exc)).strip()
        results.append({"check": "database call", "ok": False, "detail": message})
        if emit:
            emit(f"❌ {message}")
    return results


def run_workers_check(ctx) -> dict:
    results = workers_checks(ctx.conn, lambda line: ctx.sink.emit("output", line))
    if not all(r["ok"] for r in results):
        raise StepFailed("Workers database check failed.", checks=results)
    ctx.sink.emit("output", "✅ All tests passed!")
    return {"checks": results, "all_passed": True}
