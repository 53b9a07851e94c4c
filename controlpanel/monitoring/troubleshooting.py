"""The runbook's troubleshooting guide against one target: its debug queries and its common issues.

``collect_troubleshooting(conn, target)`` runs in the worker (never in a request) and returns a JSON-ready
dict the troubleshooting page renders: ``sections`` (query results as tables) and ``issues`` (each of the
runbook's common issues with what the panel sees, and its advice). Reads only.
"""

from __future__ import annotations

import json
import os
from typing import Any

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.targets import tenancy

ROW_LIMIT = 100

DEBUG_QUERIES = {
    "migration_progress": ("Check migration status", "SELECT * FROM public.migration_progress ORDER BY started_at"),
    "users_without_membership": (
        "Users without an organization membership",
        "SELECT u.id, u.email FROM auth.users u "
        "LEFT JOIN public.organization_memberships om ON u.id = om.user_id WHERE om.user_id IS NULL "
        "ORDER BY u.email",
    ),
    "rls_policies": (
        "RLS policy coverage",
        "SELECT tablename, policyname, cmd, roles FROM pg_policies WHERE schemaname = 'public' "
        "ORDER BY tablename, policyname",
    ),
    # The runbook's query joins reports and jobs in one pass (COUNT(DISTINCT) over their product per
    # organization), which is quadratic on a real target; these per-organization counts give the same figures.
    "data_distribution": (
        "Data distribution",
        "SELECT o.name AS organization, "
        "(SELECT count(*) FROM public.audit_reports ar WHERE ar.organization_id = o.id) AS reports, "
        "(SELECT count(*) FROM public.automation_jobs aj WHERE aj.organization_id = o.id) AS jobs "
        "FROM public.organizations o ORDER BY reports DESC, jobs DESC, o.name",
    ),
}

WORKERS_FUNCTIONS = ("get_user_organizations", "validate_organization_access", "create_organization_automation_job",
                     "get_organization_automation_jobs", "get_organization_usage_stats")


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _exists(conn, relation: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()[0]


def _column(conn, table: str, column: str):
    """None when missing, else whether it is NOT NULL."""
    row = conn.execute("SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
                       "AND NOT attisdropped", (f"public.{table}", column)).fetchone()
    return None if row is None else row[0]


def _function_exists(conn, name: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
                        "AND proname = %s)", (name,)).fetchone()[0]


def _policy_exists(conn, table: str, name: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = %s "
                        "AND policyname = %s)", (table, name)).fetchone()[0]


def _index_state(conn, name: str):
    """None when missing, else whether it is valid."""
    row = conn.execute("SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                       "WHERE c.relnamespace = 'public'::regnamespace AND c.relname = %s", (name,)).fetchone()
    return None if row is None else row[0]


def run_query(conn, key: str) -> dict:
    title, query = DEBUG_QUERIES[key]
    section: dict[str, Any] = {"key": key, "title": title, "sql": query}
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM ({query}) q")  # noqa: S608 - fixed query text above
        section["total"] = cur.fetchone()[0]
        cur.execute(f"{query} LIMIT {ROW_LIMIT}")
        section["columns"] = [d.name for d in cur.description]
        section["rows"] = _jsonable([list(r) for r in cur.fetchall()])
    section["truncated"] = section["total"] > len(section["rows"])
    return section


def bundle_state(conn) -> list[dict]:
    """Which objects of each Step 1 bundle file exist on the target, and which are missing."""
    tenant = list(tenancy.TENANT_TABLES)
    files = []
    objects = [("table public.organizations", _exists(conn, "public.organizations")),
               ("table public.organization_memberships", _exists(conn, "public.organization_memberships")),
               ("table public.migration_progress", _exists(conn, "public.migration_progress"))]
    objects += [(f"column {t}.organization_id", _column(conn, t, "organization_id") is not None) for t in tenant]
    objects += [(f"function public.{f}()", _function_exists(conn, f))
                for f in ("user_organization_ids", "default_organization_id") + WORKERS_FUNCTIONS]
    objects.append(("view public.organization_stats", _exists(conn, "public.organization_stats")))
    if objects[0][1]:
        # 0001 creates the home of rows without a user; personal organizations come with the data step.
        has_unassigned = conn.execute("SELECT EXISTS (SELECT 1 FROM public.organizations "
                                      "WHERE slug = 'unassigned-legacy-rows')").fetchone()[0]
        objects.append(("unassigned legacy rows organization", has_unassigned))
    files.append(("step1.schema", objects))

    objects = [("table public.multi_tenant_saved_objects", _exists(conn, "public.multi_tenant_saved_objects"))]
    for table in tenant + list(tenancy.ORGANIZATION_TABLES):
        objects.append((f"policy mt_{table}_select on {table}", _policy_exists(conn, table, f"mt_{table}_select")))
    files.append(("step1.rls", objects))

    objects = []
    if _exists(conn, "public.migration_progress"):
        rows = conn.execute("SELECT table_name, status FROM public.migration_progress ORDER BY table_name").fetchall()
        objects += [(f"migration_progress {name} done (status {status})", status == "done") for name, status in rows]
        if not rows:
            objects.append(("migration_progress rows (the data step has not started)", False))
    objects += [(f"{t}.organization_id NOT NULL", bool(_column(conn, t, "organization_id"))) for t in tenant]
    for name in ("idx_profiles_organization_id", "idx_audit_reports_organization_id_created_at",
                 "idx_automation_jobs_organization_id_created_at", "idx_automation_jobs_organization_id_status",
                 "idx_generated_automations_organization_id"):
        state = _index_state(conn, name)
        label = f"index {name}" + (" (INVALID: interrupted build)" if state is False else "")
        objects.append((label, bool(state)))
    files.append(("step1.data", objects))

    state = []
    for key, items in files:
        step = RUNBOOK.step(key)
        state.append({"step": key, "title": step.title, "file": step.file,
                      "present": [label for label, ok in items if ok],
                      "missing": [label for label, ok in items if not ok]})
    return state


def resume_advice(state: list[dict], run: dict | None = None) -> dict:
    """Where the forward runbook should continue: from the bundle state in the target's catalog, and once
    Step 1's objects are all there, from the target's latest run (``run``: {"run", "next"} — the catalog cannot
    tell whether validation, deploys and post-migration checks happened)."""
    first = RUNBOOK.forward_keys()[0]
    if all(not s["present"] for s in state):
        return {"step": first, "text": "Nothing of the migration exists yet: start with Step 1."}
    for s in state:
        if s["missing"]:
            return {"step": s["step"],
                    "text": f"A previous run stopped in “{s['title']}” ({s['file']}): {len(s['missing'])} "
                            f"object(s) missing. The file is idempotent: re-run this step to resume."}
    if run is not None and run["next"] is None:
        return {"step": None, "text": f"The migration is complete: every step of run #{run['run']} succeeded. "
                                      "Nothing to resume; the checks below describe the migrated target."}
    if run is not None and run["next"] is not None:
        title = RUNBOOK.step(run["next"]).title
        return {"step": run["next"], "text": f"Step 1 is complete; run #{run['run']} continues with “{title}”."}
    validation = RUNBOOK.validation_step()
    return {"step": validation.key, "text": f"Step 1 is complete: continue with “{validation.title}”."}


def _finding(ok: bool, text: str) -> dict:
    return {"ok": bool(ok), "text": text}


def common_issues(conn, target, state: list[dict], sections: dict) -> list[dict]:
    issues = []
    organizations = _exists(conn, "public.organizations")
    resume = resume_advice(state)
    partial = any(s["present"] for s in state) and any(s["missing"] for s in state)
    issues.append({
        "key": "organizations_exists", "title": "“Organizations table already exists”",
        "findings": [_finding(not partial, "A previous run left a partial state." if partial
                              else "No partial state: the bundle objects are all present or all absent."),
                     _finding(True, resume["text"])],
        "resume_step": resume["step"],
        "advice": RUNBOOK.step("step1.schema").advice,
    })

    findings = []
    uid = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'auth'::regnamespace "
                       "AND proname = 'uid')").fetchone()[0]
    findings.append(_finding(uid, "auth.uid() exists (reads request.jwt.claims)" if uid else "auth.uid() is missing"))
    bypass = conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'").fetchone()
    findings.append(_finding(bool(bypass and bypass[0]), "service_role has BYPASSRLS" if bypass and bypass[0]
                             else "service_role is missing or lacks BYPASSRLS"))
    rows = conn.execute(
        "SELECT c.relname, c.relrowsecurity, (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' "
        "AND p.tablename = c.relname) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relname = ANY(%s) ORDER BY c.relname",
        (list(tenancy.TENANT_TABLES + tenancy.OPTIONAL_TENANT_TABLES + tenancy.ORGANIZATION_TABLES),)).fetchall()
    for table, rls, policies in rows:
        findings.append(_finding(rls and policies > 0, f"{table}: RLS {'enabled' if rls else 'DISABLED'}, "
                                                      f"{policies} polic{'y' if policies == 1 else 'ies'}"))
    issues.append({"key": "rls_errors", "title": "RLS policy errors", "findings": findings,
                   "advice": RUNBOOK.step("step1.rls").advice})

    findings = []
    if _exists(conn, "public.migration_progress"):
        unfinished = conn.execute("SELECT table_name, status, rows_done, rows_total FROM public.migration_progress "
                                  "WHERE status <> 'done' ORDER BY table_name").fetchall()
        findings.append(_finding(not unfinished, "migration_progress: every table done" if not unfinished else
                                 "migration_progress: " + ", ".join(f"{t} {s} ({d}/{n})" for t, s, d, n in unfinished)))
    else:
        findings.append(_finding(False, "migration_progress does not exist (Step 1 not applied)"))
    for table in tenancy.TENANT_TABLES:
        if _column(conn, table, "organization_id") is None:
            continue
        missing = conn.execute(f"SELECT count(*) FROM public.{table} WHERE organization_id IS NULL").fetchone()[0]  # noqa: S608
        findings.append(_finding(missing == 0, f"{table}: {missing} row(s) without an organization"))
    if organizations:
        without = sections.get("users_without_membership", {}).get("total")
        findings.append(_finding(without == 0, f"{without} user(s) without a membership"))
    issues.append({"key": "data_incomplete", "title": "Data migration incomplete", "findings": findings,
                   "advice": RUNBOOK.step("step1.data").advice})

    findings = [_finding(_function_exists(conn, f), f"Workers function public.{f}()") for f in WORKERS_FUNCTIONS]
    var = target.service_key_env_var
    if var:
        findings.append(_finding(bool(os.environ.get(var)), f"{var} is set in the worker environment"
                                 if os.environ.get(var) else f"{var} is not set in the worker environment"))
    issues.append({"key": "workers_access", "title": "Workers can't access database", "findings": findings,
                   "advice": RUNBOOK.step("step5.workers").advice})

    findings = []
    for index in tenancy.organization_indexes(conn):
        valid = _index_state(conn, index["index"])
        findings.append(_finding(valid, f"index {index['index']} on {index['table']}" + ("" if valid else
                                                                                       " is INVALID")))
    if not findings:
        findings.append(_finding(False, "no organization_id index exists"))
    analyzed = conn.execute(
        "SELECT relname, greatest(last_analyze, last_autoanalyze) FROM pg_stat_user_tables "
        "WHERE schemaname = 'public' AND relname = ANY(%s) ORDER BY relname", (list(tenancy.TENANT_TABLES),)).fetchall()
    for table, when in analyzed:
        findings.append(_finding(when is not None, f"{table}: last ANALYZE {when:%Y-%m-%d %H:%M} UTC" if when
                                 else f"{table}: never analyzed (run ANALYZE)"))
    issues.append({"key": "performance", "title": "Performance degradation", "findings": findings,
                   "advice": ("Check if indexes were created successfully.", "Run ANALYZE on modified tables.",
                              "Monitor query execution plans (the health page shows the tenant query's plan).")})
    return issues


def collect_troubleshooting(conn, target, run: dict | None = None) -> dict:
    """``run``: where the target's latest run stands (monitoring.tasks.latest_run_progress), or None."""
    conn.execute("SET statement_timeout = '120s'")
    sections = {}
    if _exists(conn, "public.migration_progress"):
        sections["migration_progress"] = run_query(conn, "migration_progress")
    if _exists(conn, "public.organization_memberships"):
        sections["users_without_membership"] = run_query(conn, "users_without_membership")
    sections["rls_policies"] = run_query(conn, "rls_policies")
    if _exists(conn, "public.organizations") and _column(conn, "automation_jobs", "organization_id") is not None:
        sections["data_distribution"] = run_query(conn, "data_distribution")
        unassigned = conn.execute(
            "SELECT (SELECT count(*) FROM public.audit_reports WHERE organization_id IS NULL), "
            "(SELECT count(*) FROM public.automation_jobs WHERE organization_id IS NULL)").fetchone()
        sections["data_distribution"]["unassigned"] = {"reports": unassigned[0], "jobs": unassigned[1]}
    skipped = [{"key": key, "title": title, "skipped": "not migrated yet (the table it reads does not exist)"}
               for key, (title, _) in DEBUG_QUERIES.items() if key not in sections]
    state = bundle_state(conn)
    return {
        "sections": [sections[k] if k in sections else next(s for s in skipped if s["key"] == k)
                     for k in DEBUG_QUERIES],
        "bundle_state": state,
        "resume": resume_advice(state, run),
        "issues": _jsonable(common_issues(conn, target, state, sections)),
    }
