"""The health-check queries run against a target (worker/CLI side only; never inside a web request).

``collect_figures(conn)`` returns a JSON-ready dict: the runbook's daily checks (organizations, active
memberships), the weekly EXPLAIN ANALYZE of the tenant query as an impersonated member and as the service
role, organization-index usage, ``organization_stats``, database and table sizes, connection counts, and
the RLS audit and one isolation probe from ``controlpanel.evidence`` when that area provides them.
A target without ``public.organizations`` gets ``migrated: False`` and only the figures that make sense.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import contextmanager

from psycopg import sql

from controlpanel.targets import tenancy

log = logging.getLogger(__name__)

TENANT_QUERY = "SELECT * FROM public.audit_reports WHERE organization_id = {}"
HISTOGRAM_BUCKETS = 8
TOP_ORGANIZATIONS = 10


def _exists(conn, relation: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()[0]


def _has_column(conn, table: str, column: str) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
        "AND NOT attisdropped)", (f"public.{table}", column)).fetchone()[0]


@contextmanager
def _section(figures: dict, name: str):
    """Time one part of the check; a failing part is recorded, the others still run."""
    started = time.monotonic()
    try:
        yield
    except Exception as exc:  # one broken query must not hide the other figures
        log.warning("health check section %s failed: %s", name, type(exc).__name__)
        text = str(exc).strip()
        figures.setdefault("errors", {})[name] = (f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text
                                                 else type(exc).__name__)
    finally:
        figures.setdefault("timings_ms", {})[name] = round((time.monotonic() - started) * 1000, 1)


def sizes(conn) -> dict:
    database = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    tables = tenancy.existing_tables(conn, tenancy.TENANT_TABLES + tenancy.OPTIONAL_TENANT_TABLES
                                     + tenancy.ORGANIZATION_TABLES)
    table_bytes = {}
    for table in tables:
        table_bytes[table] = conn.execute("SELECT pg_total_relation_size(%s::regclass)",
                                          (f"public.{table}",)).fetchone()[0]
    return {"database_bytes": database, "table_bytes": table_bytes}


def connections(conn) -> dict:
    rows = conn.execute(
        "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND backend_type = 'client backend' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    limit = conn.execute("SELECT current_setting('max_connections')::int").fetchone()[0]
    by_state = {state: count for state, count in rows}
    return {"total": sum(by_state.values()), "by_state": by_state, "max_connections": limit}


def daily_counts(conn) -> dict:
    organizations = conn.execute("SELECT count(*) FROM public.organizations").fetchone()[0]
    active = conn.execute(
        "SELECT count(*) FROM public.organization_memberships WHERE status = 'active'").fetchone()[0]
    return {"organizations": organizations, "active_memberships": active}


def _percentile(values: list[int], fraction: float) -> int:
    if not values:
        return 0
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def _histogram(values: list[int], buckets: int = HISTOGRAM_BUCKETS) -> list[dict]:
    if not values:
        return []
    low, high = values[0], values[-1]
    width = max(1, -(-(high - low + 1) // buckets))  # ceiling division
    counts = [0] * buckets
    for value in values:
        counts[min(buckets - 1, (value - low) // width)] += 1
    return [{"low": low + i * width, "high": low + (i + 1) * width - 1, "organizations": n}
            for i, n in enumerate(counts)]


def organization_stats(conn) -> dict:
    """The runbook's `SELECT * FROM public.organization_stats`, summarised (top organizations, distribution)."""
    rows = conn.execute(
        "SELECT organization_id::text, name, slug, active_members, total_reports, total_jobs "
        "FROM public.organization_stats ORDER BY total_reports DESC, slug"
    ).fetchall()
    reports = sorted(r[4] for r in rows)
    jobs = sorted(r[5] for r in rows)

    def summary(values):
        return {"min": values[0] if values else 0, "median": _percentile(values, 0.5),
                "p90": _percentile(values, 0.9), "max": values[-1] if values else 0, "total": sum(values)}

    return {
        "count": len(rows),
        "top": [{"id": r[0], "name": r[1], "slug": r[2], "members": r[3], "reports": r[4], "jobs": r[5]}
                for r in rows[:TOP_ORGANIZATIONS]],
        "reports": summary(reports),
        "jobs": summary(jobs),
        "reports_histogram": _histogram(reports),
    }


def index_usage(conn) -> list[dict]:
    """The runbook's index monitoring query (pg_stat_user_indexes, indexname LIKE '%organization%')."""
    rows = conn.execute(
        "SELECT schemaname, relname, indexrelname, idx_scan, idx_tup_read, idx_tup_fetch, "
        "pg_relation_size(indexrelid) FROM pg_stat_user_indexes WHERE indexrelname LIKE '%%organization%%' "
        "ORDER BY idx_tup_read DESC, indexrelname"
    ).fetchall()
    tenant = {i["index"] for i in tenancy.organization_indexes(conn)}
    return [{"schema": r[0], "table": r[1], "index": r[2], "idx_scan": r[3], "idx_tup_read": r[4],
             "idx_tup_fetch": r[5], "bytes": r[6], "organization_id_index": r[2] in tenant} for r in rows]


def _plan_indexes(node: dict) -> list[str]:
    found = [node["Index Name"]] if "Index Name" in node else []
    for child in node.get("Plans", []):
        found += _plan_indexes(child)
    return found


def explain_tenant_query(conn, organization_id: str, *, role: str, user_id: str | None = None) -> dict:
    """EXPLAIN ANALYZE of the runbook's weekly query, as `role` (with the JWT claims of `user_id`)."""
    from controlpanel.evidence.impersonation import as_role, rolled_back

    query = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + TENANT_QUERY).format(sql.Literal(organization_id))
    with rolled_back(conn), as_role(conn, role, user_id):
        plan = conn.execute(query).fetchone()[0][0]
    root = plan["Plan"]
    return {
        "role": role,
        "execution_ms": round(plan.get("Execution Time", 0.0), 3),
        "planning_ms": round(plan.get("Planning Time", 0.0), 3),
        "rows": root.get("Actual Rows", 0),
        "node": root.get("Node Type"),
        "indexes": sorted(set(_plan_indexes(root))),
    }


def pick_member(conn, organization_id: str | None) -> tuple[str, str] | None:
    """The active (non-guest) member with the most reports in the given organization, else anywhere: a real user of
    a real-sized organization, so the timed query reads what a heavy user reads, not an arbitrary user's rows."""
    row = None
    if organization_id:
        row = conn.execute(
            "SELECT m.organization_id::text, m.user_id::text FROM public.organization_memberships m "
            "LEFT JOIN LATERAL (SELECT count(*) AS n FROM public.audit_reports r "
            "                   WHERE r.user_id = m.user_id AND r.organization_id = m.organization_id) r ON true "
            "WHERE m.organization_id = %s AND m.status = 'active' "
            "ORDER BY (m.role = 'guest'), r.n DESC, m.user_id LIMIT 1", (organization_id,)).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT m.organization_id::text, m.user_id::text FROM public.organization_memberships m "
            "LEFT JOIN (SELECT user_id, organization_id, count(*) AS n FROM public.audit_reports GROUP BY 1, 2) r "
            "  ON r.user_id = m.user_id AND r.organization_id = m.organization_id "
            "WHERE m.status = 'active' ORDER BY (m.role = 'guest'), r.n DESC NULLS LAST, m.organization_id, m.user_id "
            "LIMIT 1").fetchone()
    return (row[0], row[1]) if row else None


def latency(conn, busiest_organization: str | None) -> dict:
    picked = pick_member(conn, busiest_organization)
    if not picked:
        return {"skipped": "no active membership to impersonate"}
    organization_id, user_id = picked
    slug = conn.execute("SELECT slug FROM public.organizations WHERE id = %s", (organization_id,)).fetchone()[0]
    return {
        "organization": slug,
        "user_id": user_id,
        "member": explain_tenant_query(conn, organization_id, role="authenticated", user_id=user_id),
        "service_role": explain_tenant_query(conn, organization_id, role="service_role"),
    }


def rls_audit(conn) -> dict:
    """The evidence area's catalog RLS audit (reused, not copied)."""
    from controlpanel.evidence.rls_audit import BLOCKING, audit_rls

    findings = [f.as_dict() for f in audit_rls(conn)]
    for finding in findings:
        finding["key"] = f"{finding['code']}:{finding['object']}"
        finding["blocking"] = finding["severity"] in BLOCKING
    return {"available": True, "findings": findings}


def isolation_probe(conn, user_id: str | None) -> dict:
    """One isolation probe from the evidence area: one member's read and write probes (rolled back)."""
    from controlpanel.evidence.probes import FAILURES, probe_user

    if not user_id:
        return {"available": False, "detail": "no active member to impersonate"}
    # probe_user expects the id as the database returns it (a UUID), not as text.
    cells = json.loads(json.dumps(probe_user(conn, uuid.UUID(user_id)), default=str))
    failures = [c for c in cells if c["status"] in FAILURES]
    return {"available": True, "user_id": user_id, "ok": bool(cells) and not failures, "cells": len(cells),
            "failures": failures[:20],
            "detail": "; ".join(f"{c['table']} {c['action']}: {c['status']}" for c in failures[:5])}


def collect_figures(conn, *, with_evidence: bool = True) -> dict:
    """Every figure of one health check (see module docstring). Reads only."""
    started = time.monotonic()
    figures: dict = {}
    conn.execute("SET statement_timeout = '120s'")
    with _section(figures, "sizes"):
        figures.update(sizes(conn))
    with _section(figures, "connections"):
        figures["connections"] = connections(conn)
    migrated = _exists(conn, "public.organizations") and _exists(conn, "public.organization_memberships")
    figures["migrated"] = migrated
    if not migrated:
        figures["message"] = ("Not migrated yet: public.organizations does not exist, so the organization "
                              "checks do not apply. Database size is recorded as the pre-migration size.")
    else:
        with _section(figures, "daily"):
            figures.update(daily_counts(conn))
        busiest = None
        if _exists(conn, "public.organization_stats"):
            with _section(figures, "organization_stats"):
                figures["organization_stats"] = organization_stats(conn)
                top = figures["organization_stats"]["top"]
                busiest = top[0]["id"] if top else None
        with _section(figures, "index_usage"):
            figures["indexes"] = index_usage(conn)
        member = None
        if _has_column(conn, "audit_reports", "organization_id"):
            with _section(figures, "latency"):
                figures["latency"] = latency(conn, busiest)
                member = figures["latency"].get("user_id")
        if with_evidence:
            with _section(figures, "rls_audit"):
                figures["rls_audit"] = rls_audit(conn)
            with _section(figures, "isolation"):
                figures["isolation"] = isolation_probe(conn, member)
    figures["check_ms"] = round((time.monotonic() - started) * 1000, 1)
    return figures
