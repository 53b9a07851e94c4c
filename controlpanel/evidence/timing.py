"""SLA timing: the runbook's typical operations run as an impersonated member, against the 500 ms SLA.

``measure_sla(conn, user_id=None, repeats=5, sla_ms=500)`` picks a member of the organization with the
most reports (unless given), runs each operation ``repeats`` times as ``authenticated`` with that user's
JWT claims inside a rolled-back transaction, and returns median and worst per operation; the plan
(EXPLAIN ANALYZE) is kept for any operation whose worst run exceeds the SLA.
"""

import json
import statistics
import time
import uuid
from dataclasses import dataclass

import psycopg

from .impersonation import as_role, error_text, rolled_back
from .snapshots import present

# (key, label, sql); %(org)s is the member's organization, %(report)s one of its reports. Only the contract's
# columns (DESIGN: id, user_id, created_at, status) besides the bundle's own: a minimal installation has no more.
OPERATIONS = (
    ("list_reports", "A member lists their organization's reports",
     "SELECT id, created_at FROM public.audit_reports WHERE organization_id = %(org)s "
     "ORDER BY created_at DESC LIMIT 50"),
    ("count_reports", "A member counts the reports they can see",
     "SELECT count(*) FROM public.audit_reports"),
    ("list_jobs", "A member lists their organization's automation jobs",
     "SELECT id, status, created_at FROM public.automation_jobs WHERE organization_id = %(org)s "
     "ORDER BY created_at DESC LIMIT 50"),
    ("report_by_id", "A member opens a report by id",
     "SELECT * FROM public.audit_reports WHERE id = %(report)s"),
    ("organization_stats", "A member reads their organization's stats",
     "SELECT * FROM public.organization_stats WHERE organization_id = %(org)s"),
    ("weekly_explain", "The runbook's weekly check: EXPLAIN ANALYZE SELECT * FROM audit_reports WHERE organization_id",
     "EXPLAIN ANALYZE SELECT * FROM public.audit_reports WHERE organization_id = %(org)s"),
)


def _subject(conn, user_id=None):
    if user_id is None:
        row = conn.execute(
            """
            SELECT m.user_id, m.organization_id FROM public.organization_memberships m
            WHERE m.status = 'active' AND m.role IN ('admin', 'member') AND m.organization_id = (
                SELECT organization_id FROM public.audit_reports GROUP BY organization_id
                ORDER BY count(*) DESC LIMIT 1)
            ORDER BY (m.role = 'member') DESC, m.user_id LIMIT 1
            """).fetchone()
    else:
        row = conn.execute("SELECT user_id, organization_id FROM public.organization_memberships "
                           "WHERE user_id = %s AND status = 'active' LIMIT 1", (user_id,)).fetchone()
    return row


def measure_sla(conn, user_id=None, repeats: int = 5, sla_ms: float = 500.0) -> dict:
    """Median and worst per typical operation, as an impersonated member (see module docstring)."""
    if present(conn, ["public.organizations", "public.organization_memberships"]) != [
            "public.organizations", "public.organization_memberships"]:
        return {"passed": False, "error": "the target has no organizations: run the migration first",
                "operations": []}
    started = time.monotonic()
    operations = []
    with rolled_back(conn):
        subject = _subject(conn, user_id)
        if subject is None:
            return {"passed": False, "error": "no active member with an organization", "operations": []}
        member, org = subject
        report = conn.execute("SELECT id FROM public.audit_reports WHERE organization_id = %s ORDER BY created_at DESC "
                              "LIMIT 1", (org,)).fetchone()
        params = {"org": org, "report": report[0] if report else None}
        reports_in_org = conn.execute("SELECT count(*) FROM public.audit_reports WHERE organization_id = %s",
                                      (org,)).fetchone()[0]
        for key, label, query in OPERATIONS:
            timings, error, rows = [], None, None
            for _ in range(repeats):
                try:
                    with as_role(conn, "authenticated", member):
                        t0 = time.perf_counter()
                        cur = conn.execute(query, params)
                        rows = len(cur.fetchall())
                        timings.append((time.perf_counter() - t0) * 1000)
                except psycopg.Error as exc:
                    error = error_text(exc)
                    break
            worst_ms = round(max(timings), 2) if timings else None
            op: dict[str, object] = {
                "key": key, "label": label, "sql": query, "runs": len(timings), "rows": rows, "error": error,
                "median_ms": round(statistics.median(timings), 2) if timings else None,
                "worst_ms": worst_ms}
            op["passed"] = error is None and worst_ms is not None and worst_ms < sla_ms
            if not op["passed"] and error is None:
                op["plan"] = _plan(conn, member, query, params)
            operations.append(op)
    return {"sla_ms": sla_ms, "repeats": repeats, "user_id": str(member), "organization_id": str(org),
            "reports_in_organization": reports_in_org, "operations": operations,
            "passed": all(o["passed"] for o in operations), "seconds": round(time.monotonic() - started, 3)}


def _plan(conn, member, query, params) -> str:
    explain = query if query.startswith("EXPLAIN") else f"EXPLAIN (ANALYZE, BUFFERS) {query}"
    try:
        with as_role(conn, "authenticated", member):
            return "\n".join(r[0] for r in conn.execute(explain, params).fetchall())
    except psycopg.Error as exc:
        return f"(plan unavailable: {error_text(exc)})"


INDEX_USAGE_SQL = """
SELECT schemaname, relname AS tablename, indexrelname AS indexname, idx_scan, idx_tup_read, idx_tup_fetch
FROM pg_stat_user_indexes
WHERE indexrelname LIKE '%%organization%%'
ORDER BY idx_tup_read DESC, indexrelname
"""


def index_usage(conn, tables) -> dict:
    """The runbook's index monitoring query, and whether every tenant table has a valid organization index."""
    try:
        conn.execute("SELECT pg_stat_force_next_flush()")
    except psycopg.Error:
        if not conn.autocommit:
            conn.rollback()
    cur = conn.execute(INDEX_USAGE_SQL)
    columns = [c.name for c in cur.description]
    usage = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    coverage = []
    for table in tables:
        rows = conn.execute(
            "SELECT i.relname, x.indisvalid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
            "WHERE x.indrelid = to_regclass(%s) AND a.attname = 'organization_id' ORDER BY 1",
            (f"public.{table}",)).fetchall()
        coverage.append({"table": table, "indexes": [r[0] for r in rows if r[1]],
                         "invalid": [r[0] for r in rows if not r[1]],
                         "passed": any(r[1] for r in rows) and not any(not r[1] for r in rows)})
    return {"usage": usage, "coverage": coverage, "passed": bool(coverage) and all(c["passed"] for c in coverage)}


# --- typical operations as the same users, before and after -------------------------------------------------

# The same SQL before and after: RLS decides what "my" means (own rows before, the user's organizations after).
# Only the contract's tables and columns (DESIGN: audit_reports, automation_jobs, id, created_at) are named.
TYPICAL = (
    ("count_my_reports", "Count my reports", "SELECT count(*) FROM public.audit_reports"),
    ("latest_50", "My latest 50 reports",
     "SELECT id, created_at FROM public.audit_reports ORDER BY created_at DESC LIMIT 50"),
    ("open_report", "Open one of my reports", "SELECT * FROM public.audit_reports WHERE id = %(report)s"),
    ("list_my_jobs", "List my automation jobs",
     "SELECT id, created_at FROM public.automation_jobs ORDER BY created_at DESC LIMIT 50"),
    ("create_report", "Create a report (a copy of one of mine, rolled back)",
     "INSERT INTO public.audit_reports SELECT * FROM jsonb_populate_record(NULL::public.audit_reports, %(copy)s)"),
)


RATIO_FLOOR_MS = 1.0


@dataclass
class OperationTiming:
    user_id: str
    key: str
    median_ms: float | None
    rows: int | None = None
    error: str = ""


def typical_operations(conn, user_ids, repeats: int = 3) -> list[OperationTiming]:
    """Median ms of each typical operation per user, impersonated, inside a transaction that is rolled back."""
    out = []
    with rolled_back(conn):
        for user_id in user_ids:
            own = conn.execute("SELECT to_jsonb(r) FROM public.audit_reports r WHERE r.user_id = %s "
                               "ORDER BY r.created_at DESC LIMIT 1", (user_id,)).fetchone()
            if own is None:
                continue  # nothing of theirs to open or copy: the operations would not be typical
            copy = dict(own[0], id=str(uuid.uuid4()))
            params = {"report": own[0]["id"], "copy": json.dumps(copy)}
            for key, _, query in TYPICAL:
                timings, rows, error = [], None, ""
                for _ in range(repeats):
                    try:
                        with as_role(conn, "authenticated", user_id):
                            started = time.perf_counter()
                            cur = conn.execute(query, params)
                            rows = len(cur.fetchall()) if cur.description else cur.rowcount
                            timings.append((time.perf_counter() - started) * 1000)
                    except psycopg.Error as exc:
                        error = error_text(exc)
                        break
                out.append(OperationTiming(str(user_id), key, round(statistics.median(timings), 2) if timings
                                           else None, rows, error))
    return out


def compare_operations(before: list[OperationTiming], after: list[OperationTiming],
                       sla_ms: float = 500.0) -> list[dict]:
    """Per operation: the worst after/before ratio over the same users, and the worst absolute time after."""
    old = {(t.user_id, t.key): t for t in before}
    rows = []
    for key, label, _ in TYPICAL:
        pairs = [(old.get((t.user_id, key)), t) for t in after if t.key == key]
        # Below a millisecond the clock and the network dominate: a ratio of two such figures means nothing.
        ratios = [max(a.median_ms, RATIO_FLOOR_MS) / max(b.median_ms, RATIO_FLOOR_MS) for b, a in pairs
                  if b and b.median_ms is not None and a.median_ms is not None]
        worst_after = max((a.median_ms for _, a in pairs if a.median_ms is not None), default=None)
        errors = [a.error for _, a in pairs if a.error] + [b.error for b, _ in pairs if b and b.error]
        rows.append({"key": key, "label": label, "users": len(pairs),
                     "median_ratio": round(statistics.median(ratios), 2) if ratios else None,
                     "worst_ratio": round(max(ratios), 2) if ratios else None, "worst_after_ms": worst_after,
                     "errors": errors[:5],
                     "passed": bool(ratios) and not errors and worst_after is not None and worst_after < sla_ms})
    return rows
