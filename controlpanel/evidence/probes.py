"""Isolation probes: impersonate real users of different organizations on the target and try to cross.

Stable interface (reused by the scheduled health checks):

    run_isolation_probes(conn, sample_users=None, max_organizations=3) -> ProbeMatrix
    probe_user(conn, user_id) -> list[dict]            # one user's read and write probes

``conn`` is a psycopg 3 connection to the target as a role that may ``SET ROLE authenticated`` (the
Supabase ``postgres`` role, or a superuser). Everything runs in one transaction that is always rolled
back, each probe in its own savepoint, so nothing is left behind and one failure hides no other. A
synthetic "probe" organization with one member and a few copied rows is added inside that transaction,
so that isolation is tested even right after the migration, when every user is in the default one.

A cell is ``{"subject", "user_id", "table", "action", "expected", "observed", "status", "detail"}``;
``status`` is "ok", "n/a", or a failure: "leak" (rows of another organization visible), "escalation"
(a forbidden write succeeded), "missing" (a member cannot see rows they should), "broken" (the legacy
write path fails) or "error" (the probe itself failed, e.g. a policy recursing into its own table).
"""

import json
import time
import uuid
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from controlpanel.targets import tenancy

from .impersonation import as_role, error_text, rolled_back, sqlstate
from .snapshots import has_column, present

FAILURES = ("leak", "escalation", "missing", "broken", "error")
DENIED = ("42501",)  # insufficient_privilege: permission denied, or "new row violates row-level security"
SAMPLE_IDS = 5


@dataclass
class ProbeMatrix:
    users: list = field(default_factory=list)
    cells: list = field(default_factory=list)
    setup: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failures(self) -> list[dict]:
        return [c for c in self.cells if c["status"] in FAILURES]

    @property
    def passed(self) -> bool:
        return bool(self.cells) and not self.failures and not self.setup.get("error")

    def as_dict(self) -> dict:
        return {"users": self.users, "cells": self.cells, "setup": self.setup, "seconds": self.seconds,
                "passed": self.passed, "failures": len(self.failures)}


def _t(table: str) -> sql.Identifier:
    return sql.Identifier("public", table)


def _cell(subject, user_id, table, action, expected, observed, status, detail=""):
    return {"subject": subject, "user_id": str(user_id) if user_id else None, "table": table, "action": action,
            "expected": expected, "observed": observed, "status": status, "detail": detail}


class _Target:
    """What the probes need to know about the target, read once as the session role."""

    def __init__(self, conn):
        self.tables = [t for t in tenancy.tenant_tables(conn) if has_column(conn, f"public.{t}", "organization_id")]
        self.views = [r[0] for r in conn.execute(
            """
            SELECT DISTINCT v.relname FROM pg_class v
            JOIN pg_rewrite rw ON rw.ev_class = v.oid
            JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                             AND d.refclassid = 'pg_class'::regclass
            JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
            WHERE v.relnamespace = 'public'::regnamespace AND v.relkind = 'v'
              AND t.relnamespace = 'public'::regnamespace AND t.relname = ANY(%s)
            ORDER BY 1
            """, (list(tenancy.TENANT_TABLES + tenancy.OPTIONAL_TENANT_TABLES + tenancy.ORGANIZATION_TABLES),)
        ).fetchall()]
        self.user_column = {t: has_column(conn, f"public.{t}", "user_id") for t in self.tables}
        self.view_columns = {v: ("organization_id" if has_column(conn, f"public.{v}", "organization_id") else
                                 "user_id" if has_column(conn, f"public.{v}", "user_id") else None)
                             for v in self.views}


def _copy_row(conn, table: str, where: sql.Composable, params, overrides: dict) -> str | None:
    """A copy of one existing row as JSON with `overrides` (a generic way to write a valid row)."""
    row = conn.execute(sql.SQL("SELECT to_jsonb(x) FROM {} x WHERE {} LIMIT 1").format(_t(table), where),
                       params).fetchone()
    if not row:
        return None
    data = row[0] | {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in overrides.items()}
    return json.dumps(data)


def _insert_json(conn, table: str, data: str):
    return conn.execute(sql.SQL("INSERT INTO {t} SELECT * FROM jsonb_populate_record(NULL::{t}, %s::jsonb)")
                        .format(t=_t(table)), (data,))


def _add_probe_organization(conn, target: _Target) -> dict:
    """A synthetic organization with one member and copied rows (inside the rolled-back transaction)."""
    tag = uuid.uuid4().hex[:10]
    user_id, org_id = uuid.uuid4(), uuid.uuid4()
    conn.execute("INSERT INTO auth.users (id, email) VALUES (%s, %s)", (user_id, f"probe-{tag}@probe.invalid"))
    conn.execute("INSERT INTO public.organizations (id, slug, name) VALUES (%s, %s, 'Isolation probe')",
                 (org_id, f"probe-{tag}"))
    conn.execute("DELETE FROM public.organization_memberships WHERE user_id = %s", (user_id,))
    conn.execute("INSERT INTO public.organization_memberships (organization_id, user_id, role, status) "
                 "VALUES (%s, %s, 'member', 'active')", (org_id, user_id))
    # A second member: the first one's within-organization probes need someone else to reach.
    peer = uuid.uuid4()
    conn.execute("INSERT INTO auth.users (id, email) VALUES (%s, %s)", (peer, f"probe-peer-{tag}@probe.invalid"))
    conn.execute("DELETE FROM public.organization_memberships WHERE user_id = %s", (peer,))
    conn.execute("INSERT INTO public.organization_memberships (organization_id, user_id, role, status) "
                 "VALUES (%s, %s, 'member', 'active')", (org_id, peer))
    rows = {}
    if "profiles" in target.tables:
        conn.execute("DELETE FROM public.profiles WHERE id = %s", (user_id,))
        data = _copy_row(conn, "profiles", sql.SQL("true"), None, {"id": user_id, "organization_id": org_id})
        if data:
            _insert_json(conn, "profiles", data)
            rows["profiles"] = str(user_id)
    report = job = None
    if "audit_reports" in target.tables:
        report = uuid.uuid4()
        data = _copy_row(conn, "audit_reports", sql.SQL("true"), None,
                         {"id": report, "user_id": user_id, "organization_id": org_id})
        if data:
            _insert_json(conn, "audit_reports", data)
            rows["audit_reports"] = str(report)
    if "automation_jobs" in target.tables:
        job = uuid.uuid4()
        overrides: dict[str, object] = {"id": job, "user_id": user_id, "organization_id": org_id}
        if has_column(conn, "public.automation_jobs", "audit_report_id"):
            overrides["audit_report_id"] = str(report) if "audit_reports" in rows else None
        data = _copy_row(conn, "automation_jobs", sql.SQL("true"), None, overrides)
        if data:
            _insert_json(conn, "automation_jobs", data)
            rows["automation_jobs"] = str(job)
    if "generated_automations" in target.tables and "automation_jobs" in rows:
        data = _copy_row(conn, "generated_automations", sql.SQL("true"), None,
                         {"id": uuid.uuid4(), "job_id": job, "organization_id": org_id})
        if data:
            _insert_json(conn, "generated_automations", data)
            rows["generated_automations"] = "copied"
    return {"user_id": str(user_id), "organization_id": str(org_id), "rows": rows}


def _memberships(conn, user_id) -> list[tuple]:
    return conn.execute("SELECT organization_id, role FROM public.organization_memberships "
                        "WHERE user_id = %s AND status = 'active' ORDER BY organization_id", (user_id,)).fetchall()


def _outside_condition(table: str, user_id) -> tuple[sql.Composable, list]:
    """Rows a user must not see: not in their organizations (a profile of their own is fine)."""
    cond: sql.Composable = sql.SQL("(organization_id IS NULL OR NOT organization_id = ANY(%s::uuid[]))")
    if table == "profiles":
        cond = sql.SQL("({} AND id <> %s)").format(cond)
        return cond, [user_id]
    return cond, []


def _read_probes(conn, target: _Target, subject: str, user_id, allowed: list) -> list[dict]:
    cells = []
    for table in target.tables + ["organizations", "organization_memberships"]:
        outside: sql.Composable
        if table == "organizations":
            outside = sql.SQL("NOT id = ANY(%s::uuid[])")
            extra = []
        elif table == "organization_memberships":
            outside = sql.SQL("(NOT organization_id = ANY(%s::uuid[]) AND user_id <> %s)")
            extra = [user_id]
        else:
            outside, extra = _outside_condition(table, user_id)
        own = sql.SQL("id = %s") if table == "profiles" else (
            sql.SQL("user_id = %s") if target.user_column.get(table) else sql.SQL("false"))
        query = sql.SQL("SELECT count(*), count(*) FILTER (WHERE {o}), "
                        "(array_agg(id::text) FILTER (WHERE {o}))[1:{n}], "
                        "count(*) FILTER (WHERE {own}) FROM {t}").format(
            o=outside, t=_t(table), n=sql.Literal(SAMPLE_IDS), own=own)
        own_params = [user_id] if table == "profiles" or target.user_column.get(table) else []
        params = [allowed, *extra, allowed, *extra, *own_params]
        expected = conn.execute(
            sql.SQL("SELECT count(*) FILTER (WHERE NOT {o}), count(*) FILTER (WHERE {own}) FROM {t}").format(
                o=outside, own=own, t=_t(table)), [allowed, *extra, *own_params]).fetchone()
        try:
            with as_role(conn, "authenticated", user_id):
                visible, leaked, ids, own_visible = conn.execute(query, params).fetchone()
        except psycopg.Error as exc:
            cells.append(_cell(subject, user_id, table, "read", f"{expected[0]} rows", "error", "error",
                               error_text(exc)))
            continue
        if leaked:
            status, detail = "leak", f"{leaked} row(s) of other organizations visible, e.g. {', '.join(ids)}"
        elif own_visible < expected[1]:
            status, detail = "missing", f"only {own_visible} of the user's own {expected[1]} row(s) visible"
        elif table in tenancy.TENANT_TABLES and visible < expected[0]:
            status, detail = "missing", f"{expected[0] - visible} row(s) of the user's organizations not visible"
        else:
            status, detail = "ok", ""
        cells.append(_cell(subject, user_id, table, "read", f"{expected[0]} rows (own {expected[1]})",
                           f"{visible} rows (own {own_visible})", status, detail))
    comembers = [user_id] + [r[0] for r in conn.execute(
        "SELECT DISTINCT user_id FROM public.organization_memberships WHERE organization_id = ANY(%s::uuid[])",
        (allowed,)).fetchall()]
    for view in target.views:
        column = target.view_columns[view]
        try:
            with as_role(conn, "authenticated", user_id):
                if column == "organization_id":
                    visible, leaked = conn.execute(sql.SQL(
                        "SELECT count(*), count(*) FILTER (WHERE organization_id IS NULL OR NOT organization_id = "
                        "ANY(%s::uuid[])) FROM {}").format(_t(view)), (allowed,)).fetchone()
                elif column == "user_id":
                    visible, leaked = conn.execute(sql.SQL(
                        "SELECT count(*), count(*) FILTER (WHERE user_id IS NULL OR NOT user_id = ANY(%s::uuid[])) "
                        "FROM {}").format(_t(view)), (comembers,)).fetchone()
                else:
                    visible, leaked = conn.execute(sql.SQL("SELECT count(*), 0 FROM {}").format(_t(view))).fetchone()
        except psycopg.Error as exc:
            if sqlstate(exc) in DENIED:
                cells.append(_cell(subject, user_id, view, "read view", "only own organizations", "denied", "ok"))
            else:
                cells.append(_cell(subject, user_id, view, "read view", "only own organizations", "error", "error",
                                   error_text(exc)))
            continue
        cells.append(_cell(subject, user_id, view, "read view", "only own organizations", f"{visible} rows",
                           "leak" if leaked else "ok",
                           f"{leaked} row(s) of other organizations visible through the view" if leaked else ""))
    return cells


def _attempt_write(conn, subject, user_id, table, action, fn, allowed_to_succeed=False) -> dict:
    """Runs fn() as the user in a savepoint; a forbidden write that changes rows is an escalation."""
    expected = "succeeds" if allowed_to_succeed else "denied or 0 rows"
    try:
        with as_role(conn, "authenticated", user_id):
            changed, note = fn()
    except psycopg.Error as exc:
        if not allowed_to_succeed and sqlstate(exc) in DENIED:
            return _cell(subject, user_id, table, action, expected, "denied", "ok", error_text(exc))
        status = "broken" if allowed_to_succeed else "error"
        return _cell(subject, user_id, table, action, expected, "error", status, error_text(exc))
    if allowed_to_succeed:
        return _cell(subject, user_id, table, action, expected, f"{changed} row(s)", "ok" if changed else "broken",
                     note)
    return _cell(subject, user_id, table, action, expected, f"{changed} row(s) changed",
                 "escalation" if changed else "ok", note)


def _write_probes(conn, target: _Target, subject: str, user_id, memberships: list, other_org) -> list[dict]:
    cells = []
    writable = [org for org, role in memberships if role in ("admin", "member")]
    for table in [t for t in ("audit_reports", "automation_jobs") if t in target.tables]:
        own = conn.execute(sql.SQL("SELECT id FROM {} WHERE organization_id = ANY(%s::uuid[]) ORDER BY (user_id = %s) "
                                   "DESC, id LIMIT 1").format(_t(table)), (writable or [uuid.UUID(int=0)],
                                                                          user_id)).fetchone()
        foreign = conn.execute(sql.SQL("SELECT id FROM {} WHERE organization_id = %s ORDER BY id LIMIT 1").format(
            _t(table)), (other_org,)).fetchone()
        data = _copy_row(conn, table, sql.SQL("true"), None,
                         {"id": uuid.uuid4(), "user_id": user_id, "organization_id": other_org,
                          **({"audit_report_id": None} if table == "automation_jobs" else {})})
        if data:
            cells.append(_attempt_write(conn, subject, user_id, table, "insert into another organization",
                                        lambda d=data, t=table: (_insert_json(conn, t, d).rowcount, "")))
        if own:
            cells.append(_attempt_write(
                conn, subject, user_id, table, "move own row to another organization",
                lambda t=table, i=own[0]: (conn.execute(sql.SQL("UPDATE {} SET organization_id = %s WHERE id = %s")
                                                        .format(_t(t)), (other_org, i)).rowcount, f"row {i}")))
        if foreign:
            cells.append(_attempt_write(
                conn, subject, user_id, table, "update a row of another organization",
                lambda t=table, i=foreign[0]: (conn.execute(sql.SQL(
                    "UPDATE {} SET organization_id = organization_id WHERE id = %s").format(_t(t)), (i,)).rowcount,
                    f"row {i}")))
            cells.append(_attempt_write(
                conn, subject, user_id, table, "delete a row of another organization",
                lambda t=table, i=foreign[0]: (conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(_t(t)),
                                                            (i,)).rowcount, f"row {i}")))
        if table == "audit_reports" and writable:
            legacy = _copy_row(conn, table, sql.SQL("true"), None,
                               {"id": uuid.uuid4(), "user_id": user_id, "organization_id": None})

            def legacy_write(d=legacy):
                row = conn.execute(sql.SQL("INSERT INTO {t} SELECT * FROM jsonb_populate_record(NULL::{t}, "
                                           "%s::jsonb) RETURNING organization_id").format(t=_t("audit_reports")),
                                   (d,)).fetchone()
                ok = row is not None and row[0] is not None and row[0] in writable + [o for o, _ in memberships]
                return (1 if ok else 0), f"organization_id set to {row[0] if row else None}"

            if legacy:
                cells.append(_attempt_write(conn, subject, user_id, table,
                                            "legacy insert without organization_id (backwards compatibility)",
                                            legacy_write, allowed_to_succeed=True))
    cells.append(_attempt_write(
        conn, subject, user_id, "organization_memberships", "add self to another organization as admin",
        lambda: (conn.execute("INSERT INTO public.organization_memberships (organization_id, user_id, role, status) "
                              "VALUES (%s, %s, 'admin', 'active')", (other_org, user_id)).rowcount,
                 f"organization {other_org}")))
    lower = [org for org, role in memberships if role != "admin"]
    if lower:
        cells.append(_attempt_write(
            conn, subject, user_id, "organization_memberships", "raise own role to admin",
            lambda: (conn.execute("UPDATE public.organization_memberships SET role = 'admin' WHERE user_id = %s "
                                  "AND organization_id = %s", (user_id, lower[0])).rowcount,
                     f"organization {lower[0]}")))
        cells += _within_organization_probes(conn, subject, user_id, lower[0])
    else:
        # Admin of every organization: fine when each is the user's own (alone in it); admin of organizations
        # shared with others means the migration handed this user everyone else's rows to manage.
        shared = conn.execute("SELECT organization_id, count(*) - 1 FROM public.organization_memberships "
                              "WHERE organization_id = ANY(%s::uuid[]) AND status = 'active' GROUP BY 1 "
                              "HAVING count(*) > 1 ORDER BY 2 DESC", ([o for o, _ in memberships],)).fetchall()
        if shared:
            cells.append(_cell(subject, user_id, "organization_memberships", "already admin", "admin only of own "
                               "organizations", f"admin of {len(shared)} shared organization(s)", "escalation",
                               f"already admin of organization {shared[0][0]} shared with {shared[0][1]} other "
                               "member(s): self-promotion cannot even be tried"))
        else:
            cells.append(_cell(subject, user_id, "organization_memberships", "already admin", "-",
                               "admin of own organization(s) only", "ok", "no other member to reach"))
    return cells


def _within_organization_probes(conn, subject, user_id, org) -> list[dict]:
    """As a non-admin member: remove another member, rename the organization (both need admin rights)."""
    cells = []
    other = conn.execute("SELECT user_id FROM public.organization_memberships WHERE organization_id = %s "
                         "AND user_id <> %s ORDER BY user_id LIMIT 1", (org, user_id)).fetchone()
    if other:
        cells.append(_attempt_write(
            conn, subject, user_id, "organization_memberships", "remove another member (not admin)",
            lambda: (conn.execute("DELETE FROM public.organization_memberships WHERE organization_id = %s "
                                  "AND user_id = %s", (org, other[0])).rowcount, f"member {other[0]}")))
    cells.append(_attempt_write(
        conn, subject, user_id, "organizations", "rename the organization (not admin)",
        lambda: (conn.execute("UPDATE public.organizations SET name = name || ' (renamed by a member)' "
                              "WHERE id = %s", (org,)).rowcount, f"organization {org}")))
    return cells


def _role_probes(conn, target: _Target) -> list[dict]:
    cells = []
    tables = target.tables + ["organizations", "organization_memberships"] + target.views
    roles = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'service_role')")]
    for table in tables:
        total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_t(table))).fetchone()[0]
        if "anon" in roles:
            try:
                with as_role(conn, "anon"):
                    seen = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_t(table))).fetchone()[0]
                cells.append(_cell("anon", None, table, "read", "0 rows", f"{seen} rows", "leak" if seen else "ok",
                                   f"anon sees {seen} row(s)" if seen else ""))
            except psycopg.Error as exc:
                status = "ok" if sqlstate(exc) in DENIED else "error"
                cells.append(_cell("anon", None, table, "read", "0 rows", "denied" if status == "ok" else "error",
                                   status, error_text(exc)))
        if "service_role" in roles:
            try:
                with as_role(conn, "service_role"):
                    seen = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_t(table))).fetchone()[0]
                cells.append(_cell("service_role", None, table, "read", f"{total} rows", f"{seen} rows",
                                   "ok" if seen == total else "missing",
                                   "" if seen == total else "service_role must see every row (Workers)"))
            except psycopg.Error as exc:
                cells.append(_cell("service_role", None, table, "read", f"{total} rows", "error",
                                   "missing" if sqlstate(exc) in DENIED else "error", error_text(exc)))
    if "anon" in roles:
        private = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'public.organizations'::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attname NOT IN ('id', 'name', 'slug') "
            "AND has_column_privilege('anon', 'public.organizations'::regclass, attname, 'SELECT') ORDER BY 1")]
        leaked = [c for c in cells
                  if c["subject"] == "anon" and c["table"] == "organizations" and c["status"] == "leak"]
        cells.append(_cell("anon", None, "organizations", "read private columns", "none readable",
                           ", ".join(private) or "none", "leak" if private and leaked else "ok",
                           "anon holds SELECT on private columns " + ", ".join(private) if private else ""))
    return cells


def _sample(conn, max_organizations: int, exclude_organization=None) -> list[tuple]:
    """One member (preferably role member) from each of the organizations with the most active members."""
    return conn.execute(
        """
        WITH orgs AS (
            SELECT organization_id FROM public.organization_memberships
            WHERE status = 'active' AND organization_id IS DISTINCT FROM %s::uuid
            GROUP BY organization_id ORDER BY count(*) DESC, organization_id LIMIT %s)
        SELECT DISTINCT ON (m.organization_id) m.user_id
        FROM public.organization_memberships m JOIN orgs USING (organization_id)
        WHERE m.status = 'active' AND m.role IN ('admin', 'member')
        ORDER BY m.organization_id, (m.role = 'member') DESC, m.user_id
        """, (exclude_organization, max_organizations)).fetchall()


def _probe_one(conn, target: _Target, subject: str, user_id, other_org=None) -> tuple[dict, list[dict]]:
    memberships = _memberships(conn, user_id)
    allowed = [org for org, _ in memberships]
    if other_org is None or uuid.UUID(str(other_org)) in allowed:
        # Any other organization: no bundle-specific notion (such as a default organization) is assumed.
        row = conn.execute("SELECT id FROM public.organizations WHERE NOT id = ANY(%s::uuid[]) ORDER BY id LIMIT 1",
                           (allowed,)).fetchone()
        other_org = row[0] if row else None
    user = {"subject": subject, "user_id": str(user_id),
            "memberships": [{"organization_id": str(o), "role": r} for o, r in memberships]}
    cells = _read_probes(conn, target, subject, user_id, allowed)
    if other_org is not None:
        cells += _write_probes(conn, target, subject, user_id, memberships, other_org)
    return user, cells


def probe_user(conn, user_id) -> list[dict]:
    """Read and write probes for one user, in a transaction that is rolled back (the health-check probe)."""
    with rolled_back(conn):
        target = _Target(conn)
        return _probe_one(conn, target, "user", user_id)[1]


def run_isolation_probes(conn, sample_users=None, max_organizations: int = 3) -> ProbeMatrix:
    """The user × table × action matrix (see module docstring); the target is left exactly as it was."""
    started = time.monotonic()
    matrix = ProbeMatrix()
    if present(conn, ["public.organizations", "public.organization_memberships"]) != [
            "public.organizations", "public.organization_memberships"]:
        matrix.setup = {"error": "the target has no organizations: run the migration first"}
        return matrix
    with rolled_back(conn):
        target = _Target(conn)
        try:
            with conn.transaction():
                synthetic = _add_probe_organization(conn, target)
        except psycopg.Error as exc:
            synthetic = None
            matrix.setup["synthetic_error"] = error_text(exc)
        matrix.setup["synthetic"] = synthetic
        exclude = synthetic["organization_id"] if synthetic else None
        users = [r[0] for r in _sample(conn, max_organizations, exclude)] if sample_users is None \
            else list(sample_users)
        subjects = [(f"member {i + 1}", u, synthetic["organization_id"] if synthetic else None)
                    for i, u in enumerate(users)]
        if synthetic:
            subjects.append(("probe member", uuid.UUID(synthetic["user_id"]), None))
        for subject, user_id, other in subjects:
            user, cells = _probe_one(conn, target, subject, user_id, other)
            matrix.users.append(user)
            matrix.cells += cells
        matrix.cells += _role_probes(conn, target)
        if len({m["organization_id"] for u in matrix.users for m in u["memberships"]}) < 2:
            matrix.setup["error"] = "fewer than two organizations among the probed users: isolation not shown"
    matrix.seconds = round(time.monotonic() - started, 3)
    return matrix
