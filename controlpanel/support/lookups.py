"""Membership lookups on a target: the panel's own read-only queries (no free SQL), run by a Celery task.

Each function takes an open psycopg connection and returns JSON-ready dicts with only what support needs:
ids, emails, a name, roles, statuses and dates.
"""

import time
import uuid

import psycopg

from controlpanel.targets.connection import TargetUnavailable, target_connection

PAGE_SIZE = 50
MEMBERSHIPS_LIMIT = 100
CANDIDATES_LIMIT = 20
EXPORT_LIMIT = 5000  # users without membership kept for the page and the CSV export
STATEMENT_TIMEOUT_MS = 5000


class LookupFailed(Exception):
    """The lookup cannot be answered; the message is safe to show."""


def _iso(value):
    return value.isoformat() if value is not None else None


def _rows(cur) -> list[dict]:
    columns = [c.name for c in cur.description]
    return [{k: (_iso(v) if hasattr(v, "isoformat") else str(v) if isinstance(v, uuid.UUID) else v)
             for k, v in zip(columns, row, strict=True)} for row in cur.fetchall()]


def _require_migrated(conn) -> None:
    found = conn.execute("SELECT to_regclass('public.organizations') IS NOT NULL "
                         "AND to_regclass('public.organization_memberships') IS NOT NULL").fetchone()[0]
    if not found:
        raise LookupFailed("This target has no organizations yet (the multi-tenant migration has not run).")


def _as_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def find_person(conn, query: str) -> dict:
    """A user by email or user id: their organizations with role, status, invited/accepted dates."""
    _require_migrated(conn)
    user_id = _as_uuid(query)
    with conn.cursor() as cur:
        select = ("SELECT u.id, u.email, p.full_name AS name, u.created_at FROM auth.users u "
                  "LEFT JOIN public.profiles p ON p.id = u.id ")
        if user_id:
            cur.execute(select + "WHERE u.id = %s", (user_id,))
        else:
            cur.execute(select + "WHERE u.email = %s", (query.strip(),))
            if cur.rowcount == 0:  # exact match uses the unique index; fall back to case-insensitive
                cur.execute(select + "WHERE lower(u.email) = lower(%s) LIMIT 2", (query.strip(),))
        users = _rows(cur)
        if not users:
            return {"found": False}
        user = users[0]
        cur.execute(
            "SELECT o.slug, o.name AS organization, m.role, m.status, m.invited_at, m.accepted_at, m.created_at "
            "FROM public.organization_memberships m JOIN public.organizations o ON o.id = m.organization_id "
            "WHERE m.user_id = %s ORDER BY o.name LIMIT %s",
            (user["id"], MEMBERSHIPS_LIMIT + 1),
        )
        memberships = _rows(cur)
    return {"found": True, "user": user, "memberships": memberships[:MEMBERSHIPS_LIMIT],
            "truncated": len(memberships) > MEMBERSHIPS_LIMIT}


def find_organization(conn, query: str, page: int = 1) -> dict:
    """An organization by slug or name: its members (one page) with role and status, and its counts."""
    _require_migrated(conn)
    query = query.strip()
    with conn.cursor() as cur:
        columns = "SELECT id, slug, name, plan, is_default, created_at FROM public.organizations "
        cur.execute(columns + "WHERE slug = %s", (query.lower(),))
        found = _rows(cur)
        if not found:
            cur.execute(columns + "WHERE lower(name) = lower(%s) ORDER BY name LIMIT %s", (query, CANDIDATES_LIMIT))
            found = _rows(cur)
        if not found:
            pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            cur.execute(columns + "WHERE name ILIKE %s OR slug ILIKE %s ORDER BY name LIMIT %s",
                        (pattern, pattern, CANDIDATES_LIMIT))
            found = _rows(cur)
        if len(found) != 1:
            return {"found": bool(found), "candidates": found}
        org = found[0]
        cur.execute(
            "SELECT (SELECT count(*) FROM public.audit_reports WHERE organization_id = %(id)s) AS reports, "
            "(SELECT count(*) FROM public.automation_jobs WHERE organization_id = %(id)s) AS jobs",
            {"id": org["id"]},
        )
        counts = _rows(cur)[0]
        cur.execute("SELECT status, count(*) AS n FROM public.organization_memberships WHERE organization_id = %s "
                    "GROUP BY status ORDER BY status", (org["id"],))
        by_status = {row["status"]: row["n"] for row in _rows(cur)}
        page = max(1, page)
        cur.execute(
            "SELECT u.id, u.email, p.full_name AS name, m.role, m.status, m.invited_at, m.accepted_at "
            "FROM public.organization_memberships m JOIN auth.users u ON u.id = m.user_id "
            "LEFT JOIN public.profiles p ON p.id = m.user_id WHERE m.organization_id = %s "
            "ORDER BY u.email, u.id LIMIT %s OFFSET %s",
            (org["id"], PAGE_SIZE, (page - 1) * PAGE_SIZE),
        )
        members = _rows(cur)
    total = sum(by_status.values())
    return {"found": True, "organization": org, "counts": counts, "members_by_status": by_status,
            "members_total": total, "members": members, "page": page,
            "pages": max(1, -(-total // PAGE_SIZE))}


def users_without_membership(conn, limit: int = EXPORT_LIMIT) -> dict:
    """The runbook's troubleshooting query: users with no organization membership (count and list)."""
    _require_migrated(conn)
    with conn.cursor() as cur:
        # One pass over the anti-join: the window count is taken before LIMIT.
        cur.execute(
            "SELECT u.id, u.email, u.created_at, count(*) OVER () AS total FROM auth.users u WHERE NOT EXISTS "
            "(SELECT 1 FROM public.organization_memberships m WHERE m.user_id = u.id) "
            "ORDER BY u.created_at, u.id LIMIT %s",
            (limit,),
        )
        users = _rows(cur)
    count = users[0]["total"] if users else 0
    for user in users:
        del user["total"]
    return {"count": count, "users": users, "truncated": count > len(users)}


def lookup_connection(target):
    """Read-only, time-limited session on the target (the panel never writes during a lookup)."""
    return target_connection(
        target, application_name="controlpanel-lookup",
        options=f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )


def perform(lookup) -> None:
    """Answer one stored LookupResult (called by the Celery task; tests call it directly)."""
    from django.utils import timezone

    from .models import LookupResult

    started = time.perf_counter()
    try:
        with lookup_connection(lookup.target) as conn:
            if lookup.kind == LookupResult.Kind.PERSON:
                result = find_person(conn, lookup.query)
            elif lookup.kind == LookupResult.Kind.ORGANIZATION:
                result = find_organization(conn, lookup.query, lookup.page)
            else:
                result = users_without_membership(conn)
        lookup.status, lookup.result, lookup.error = LookupResult.Status.DONE, result, ""
    except (LookupFailed, TargetUnavailable) as exc:
        lookup.status, lookup.error = LookupResult.Status.FAILED, str(exc)[:500]
    except psycopg.errors.QueryCanceled:
        lookup.status, lookup.error = LookupResult.Status.FAILED, "The lookup took too long and was cancelled."
    except psycopg.Error as exc:  # the class name only: a server message could quote data
        lookup.status = LookupResult.Status.FAILED
        lookup.error = f"The target refused the lookup ({type(exc).__name__})."
    lookup.finished_at = timezone.now()
    lookup.elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    lookup.save(update_fields=["status", "result", "error", "finished_at", "elapsed_ms"])
