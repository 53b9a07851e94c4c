"""Helpers for the SQL bundle tests: real PostgreSQL, uniquely named throw-away databases.

Connection: the usual libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD), defaulting to
127.0.0.1:5432 as ``postgres``. Every database created here is named ``sqlb_<random>`` and dropped at
teardown. Seeded baselines are built once per session and cloned with ``CREATE DATABASE ... TEMPLATE``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors, sql

from controlpanel.targets.seeding import seed_target

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "migrations_sql"
BASELINE = BUNDLE / "baseline"
FORWARD = [
    BUNDLE / "20250904000001_add_multi_tenant_organizations.sql",
    BUNDLE / "20250904000002_add_organization_rls_policies.sql",
    BUNDLE / "20250904000003_migrate_existing_data_to_organizations.sql",
]
ROLLBACK = BUNDLE / "rollback-multi-tenant-organizations.sql"
VALIDATION = BUNDLE / "test-multi-tenant-migration.sql"
CATEGORIES = ("Schema", "RLS Policies", "Data Migration", "Functions", "Performance/Indexes")

PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGPORT = os.environ.get("PGPORT", "5432")
PGUSER = os.environ.get("PGUSER", "postgres")


def dsn(dbname: str) -> str:
    return f"host={PGHOST} port={PGPORT} user={PGUSER} dbname={dbname}"


def admin_connect() -> psycopg.Connection:
    return psycopg.connect(dsn("postgres"), autocommit=True)


def unique_name(tag: str = "") -> str:
    return f"sqlb_{tag}{uuid.uuid4().hex[:10]}"


def drop_database(name: str) -> None:
    with admin_connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def psql(dbname: str, path: Path, *, check: bool = True, env_extra: dict | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a file exactly as an engineer would: psql -v ON_ERROR_STOP=1 -f FILE."""
    env = {**os.environ, "PGHOST": PGHOST, "PGPORT": PGPORT, "PGUSER": PGUSER, **(env_extra or {})}
    proc = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-f", str(path)],
        capture_output=True, text=True, env=env, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"psql -f {path.name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def results(output: str) -> dict[str, str]:
    """Parse 'RESULT: <Category> tests PASSED|FAILED' lines."""
    return dict(re.findall(r"RESULT: (.+?) tests (PASSED|FAILED)", output))


def migrate(dbname: str, env_extra: dict | None = None) -> None:
    for path in FORWARD:
        psql(dbname, path, env_extra=env_extra)


def validate(dbname: str) -> tuple[dict[str, str], str]:
    proc = psql(dbname, VALIDATION)
    return results(proc.stderr + proc.stdout), proc.stderr


def build_baseline(name: str, *, waitlist: bool = True) -> None:
    with admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    for path in sorted(BASELINE.glob("*.sql")):
        if not waitlist and "waitlist" in path.name:
            continue
        psql(name, path)


@dataclass
class Template:
    name: str
    users: int
    reports: int
    counts: dict


def make_template(tag: str, users: int, reports: int, waitlist: bool = True) -> Iterator[Template]:
    name = unique_name(f"tpl{tag}_")
    try:
        build_baseline(name, waitlist=waitlist)
        with psycopg.connect(dsn(name), autocommit=True) as conn:
            counts = seed_target(conn, users=users, reports=reports, seed=7)
        yield Template(name, users, reports, counts)
    finally:
        drop_database(name)


def connect(dbname: str, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(dsn(dbname), autocommit=autocommit)


TENANT_TABLES = ("public.profiles", "public.audit_reports", "public.automation_jobs",
                 "public.generated_automations", "public.waitlist")


def present_tables(conn, tables=("auth.users", *TENANT_TABLES)) -> list[str]:
    out = []
    for table in tables:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None:
            out.append(table)
    return out


def content_checksums(conn, tables) -> dict[str, str]:
    """md5 over every row (all original columns, ordered by id): proves rows are intact, not just counted."""
    out = {}
    for table in tables:
        schema, name = table.split(".")
        cols = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attname <> 'organization_id' ORDER BY attname", (table,)).fetchall()]
        row = sql.SQL("ROW({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in cols))
        query = sql.SQL("SELECT md5(string_agg(md5({row}::text), '' ORDER BY id)) FROM {t}").format(
            row=row, t=sql.Identifier(schema, name))
        out[table] = conn.execute(query).fetchone()[0]
    return out


# --- access as the API sees it -------------------------------------------------------------------------

ACCESS_TABLES = ("profiles", "audit_reports", "automation_jobs", "generated_automations", "waitlist")
ACTIONS = ("read", "update", "delete")


def _ids(cur, statement) -> frozenset:
    """Primary keys a statement returns, or none when the role may not run it; always rolled back."""
    try:
        with cur.connection.transaction(force_rollback=True):
            cur.execute(statement)
            return frozenset(r[0] for r in cur.fetchall())
    except errors.InsufficientPrivilege:
        return frozenset()


def access_of(dbname: str, subjects) -> dict:
    """{(subject, table, action): frozenset of ids} for subjects = user ids, 'anon' or 'service_role'."""
    out = {}
    with psycopg.connect(dsn(dbname)) as conn, conn.cursor() as cur:
        tables = [t for t in ACCESS_TABLES
                  if cur.execute("SELECT to_regclass(%s)", (f"public.{t}",)).fetchone()[0] is not None]
        for subject in subjects:
            role = subject if subject in ("anon", "service_role") else "authenticated"
            claims = {"role": role} if role != "authenticated" else {"sub": str(subject), "role": role}
            with conn.transaction(force_rollback=True):
                cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
                for table in tables:
                    t = sql.Identifier("public", table)
                    out[(subject, table, "read")] = _ids(cur, sql.SQL("SELECT id FROM {}").format(t))
                    out[(subject, table, "update")] = _ids(cur, sql.SQL("UPDATE {} SET id = id RETURNING id").format(t))
                    out[(subject, table, "delete")] = _ids(cur, sql.SQL("DELETE FROM {} RETURNING id").format(t))
        conn.rollback()
    return out
