"""Snapshots of a target before and after the migration: what reconciliation and growth compare.

``collect_snapshot(conn)`` returns a JSON-ready dict: the runbook's data assessment queries, exact row
counts and row-identity digests per table, table/index/database sizes, the schema fingerprint
(``controlpanel.targets.catalog``) and, once the organizations exist, the tenancy checks (rows without
an organization, users without an (active) membership, the runbook's data distribution query).
Read-only; runs in one REPEATABLE READ transaction so that all figures describe the same moment.
"""

import json
import time

from psycopg import sql

from controlpanel.runbook.definition import DATA_ASSESSMENT
from controlpanel.targets import tenancy
from controlpanel.targets.catalog import schema_fingerprint

# Tables whose rows are counted and identified (schema-qualified; optional ones only when present).
CORE_TABLES = ("auth.users",) + tuple(f"public.{t}" for t in tenancy.TENANT_TABLES)
OPTIONAL_TABLES = tuple(f"public.{t}" for t in tenancy.OPTIONAL_TENANT_TABLES + tenancy.ORGANIZATION_TABLES)
# Up to this many rows, a snapshot keeps every id of a table, so a lost row is named exactly; above it,
# ids are summarised in 256 buckets (first two hex digits) with a digest each.
ID_CAPTURE_LIMIT = 10_000
IDENTITY_SAMPLE = 20  # ids shown per finding

# The runbook's "Verify data distribution" query gives the same figures, but its double LEFT JOIN multiplies
# reports by jobs per organization (10^10 rows for 1M reports in one organization); counted separately here.
DISTRIBUTION_SQL = """
SELECT COALESCE(o.name, 'Unassigned') AS organization, o.id::text AS organization_id,
       coalesce(r.n, 0) AS reports, coalesce(j.n, 0) AS jobs
FROM public.organizations o
LEFT JOIN (SELECT organization_id, count(*) AS n FROM public.audit_reports GROUP BY 1) r ON r.organization_id = o.id
LEFT JOIN (SELECT organization_id, count(*) AS n FROM public.automation_jobs GROUP BY 1) j ON j.organization_id = o.id
ORDER BY reports DESC, jobs DESC, o.id
LIMIT 200
"""

USERS_WITHOUT_MEMBERSHIP_SQL = """
SELECT u.id::text
FROM auth.users u
LEFT JOIN public.organization_memberships om ON u.id = om.user_id
WHERE om.user_id IS NULL
ORDER BY u.id
"""

USERS_WITHOUT_ACTIVE_MEMBERSHIP_SQL = """
SELECT u.id::text FROM auth.users u
WHERE NOT EXISTS (SELECT 1 FROM public.organization_memberships om
                  WHERE om.user_id = u.id AND om.status = 'active')
ORDER BY u.id
"""


def present(conn, tables) -> list[str]:
    return [t for t in tables if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (t,)).fetchone()[0]]


def has_column(conn, table: str, column: str) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
        "AND attnum > 0 AND NOT attisdropped)", (table, column)).fetchone()[0]


def _ident(table: str) -> sql.Identifier:
    schema, name = table.split(".")
    return sql.Identifier(schema, name)


def _identities(conn, table: str, count: int) -> dict:
    buckets = {
        bucket: [n, digest]
        for bucket, n, digest in conn.execute(sql.SQL(
            "SELECT left(id::text, 2), count(*), md5(string_agg(id::text, ',' ORDER BY id)) FROM {} GROUP BY 1"
        ).format(_ident(table))).fetchall()
    }
    out: dict[str, object] = {"buckets": buckets}
    if count <= ID_CAPTURE_LIMIT:
        out["ids"] = [r[0] for r in conn.execute(
            sql.SQL("SELECT id::text FROM {} ORDER BY id").format(_ident(table))).fetchall()]
    return out


WIDTH_SAMPLE_ROWS = 1000


def _sizes(conn, tables) -> dict:
    """Per table: heap (main fork), table (with TOAST), indexes (each by name), total, and the average stored
    width of each column over a sample: what the size line needs to tell added columns from rewrites."""
    sizes = {}
    for table in tables:
        main, heap, indexes, total = conn.execute(
            "SELECT pg_relation_size(%s::regclass), pg_table_size(%s::regclass), pg_indexes_size(%s::regclass), "
            "pg_total_relation_size(%s::regclass)", (table, table, table, table)).fetchone()
        index_sizes = dict(conn.execute(
            "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass", (table,)).fetchall())
        columns = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", (table,)).fetchall()]
        widths = {}
        if columns:
            row = conn.execute(sql.SQL("SELECT {} FROM (SELECT * FROM {} LIMIT {}) t").format(
                sql.SQL(", ").join(sql.SQL("coalesce(avg(pg_column_size(t.{})), 0)::float").format(sql.Identifier(c))
                                   for c in columns), _ident(table), sql.Literal(WIDTH_SAMPLE_ROWS))).fetchone()
            widths = dict(zip(columns, row, strict=True))
        sizes[table] = {"main": main, "table": heap, "indexes": indexes, "total": total,
                        "index_sizes": index_sizes, "column_widths": widths}
    return sizes


def sized_tables(conn) -> list[str]:
    """Every base table of public, and auth.users: new objects are sized too (the fixed cost of the migration)."""
    return [r[0] for r in conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'public' OR (n.nspname, c.relname) = ('auth', 'users')) "
        "ORDER BY 1").fetchall()]


def _ids(rows) -> dict:
    ids = [r[0] for r in rows]
    return {"count": len(ids), "ids": ids[:IDENTITY_SAMPLE]}


def tenancy_checks(conn, tables) -> dict | None:
    """Organization checks (None before the migration): orphans, users without membership, distribution."""
    if not present(conn, ["public.organizations", "public.organization_memberships"]) == [
            "public.organizations", "public.organization_memberships"]:
        return None
    orphans = {}
    for table in tables:
        if table.startswith("public.") and table.split(".")[1] not in tenancy.ORGANIZATION_TABLES \
                and has_column(conn, table, "organization_id"):
            orphans[table] = _ids(conn.execute(sql.SQL(
                "SELECT id::text FROM {} WHERE organization_id IS NULL ORDER BY id").format(_ident(table))).fetchall())
            dangling = conn.execute(sql.SQL(
                "SELECT t.id::text FROM {} t WHERE t.organization_id IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM public.organizations o WHERE o.id = t.organization_id) ORDER BY t.id"
            ).format(_ident(table))).fetchall()
            orphans[table]["dangling"] = _ids(dangling)
    cur = conn.execute(DISTRIBUTION_SQL)
    columns = [c.name for c in cur.description]
    distribution = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    return {
        "organizations": conn.execute("SELECT count(*) FROM public.organizations").fetchone()[0],
        "memberships": conn.execute("SELECT count(*) FROM public.organization_memberships").fetchone()[0],
        "rows_without_organization": orphans,
        "users_without_membership": _ids(conn.execute(USERS_WITHOUT_MEMBERSHIP_SQL).fetchall()),
        "users_without_active_membership": _ids(conn.execute(USERS_WITHOUT_ACTIVE_MEMBERSHIP_SQL).fetchall()),
        "distribution": distribution,
    }


def collect_snapshot(conn) -> dict:
    """Everything reconciliation and growth need, as one consistent, JSON-ready picture (read-only)."""
    started = time.monotonic()
    previous = conn.autocommit
    conn.autocommit = False
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        assessment = {label: conn.execute(query).fetchone()[0] for label, query in DATA_ASSESSMENT}
        tables = present(conn, CORE_TABLES + OPTIONAL_TABLES)
        counts, identities = {}, {}
        for table in tables:
            counts[table] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(table))).fetchone()[0]
            identities[table] = _identities(conn, table, counts[table])
        data = {
            "assessment": assessment,
            "counts": counts,
            "identities": identities,
            "sizes": _sizes(conn, sized_tables(conn)),
            "database_size": conn.execute("SELECT pg_database_size(current_database())").fetchone()[0],
            "user_data_size": conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
                "WHERE c.relnamespace IN ('public'::regnamespace, 'auth'::regnamespace) AND c.relkind IN ('r', 'm')"
            ).fetchone()[0],
            "tenancy": tenancy_checks(conn, tables),
        }
        fingerprint = schema_fingerprint(conn)
    finally:
        conn.rollback()
        conn.autocommit = previous
    # JSON round trip: stored and freshly taken fingerprints then compare with == (lists, not tuples).
    data["fingerprint"] = json.loads(json.dumps(fingerprint, default=str))
    data["seconds"] = round(time.monotonic() - started, 3)
    return json.loads(json.dumps(data, default=str))
