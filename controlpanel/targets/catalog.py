"""Schema fingerprints of a target database, read from the PostgreSQL catalog (no Django models).

``schema_fingerprint`` returns a plain, deterministic dict (sorted lists of tuples) describing tables,
columns (name, type, default, nullability; attnum is ignored so dropped columns leave no trace),
constraints, indexes, policies, RLS flags, views (definition and options), functions, triggers and
grants. Two fingerprints compare with ``==``; ``diff_fingerprints`` names what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

_QUERIES: dict[str, str] = {
    "schemas": """
        SELECT n.nspname, coalesce(n.nspacl::text[], '{}')::text
        FROM pg_namespace n WHERE n.nspname = ANY(%(schemas)s)
    """,
    "tables": """
        SELECT n.nspname || '.' || c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
               coalesce(c.reloptions, '{}')::text, coalesce(c.relacl::text[], '{}')::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'f', 'm', 'S')
          AND NOT c.relname = ANY(%(exclude)s)
    """,
    "columns": """
        SELECT n.nspname || '.' || c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text, a.attgenerated::text,
               coalesce(a.attacl::text[], '{}')::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'f', 'm', 'v')
          AND a.attnum > 0 AND NOT a.attisdropped AND NOT c.relname = ANY(%(exclude)s)
    """,
    "constraints": """
        SELECT n.nspname || '.' || c.relname, co.conname, co.contype::text, pg_get_constraintdef(co.oid),
               co.convalidated, co.condeferrable, co.condeferred
        FROM pg_constraint co
        JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND NOT c.relname = ANY(%(exclude)s)
    """,
    "indexes": """
        SELECT n.nspname || '.' || t.relname, i.relname, pg_get_indexdef(x.indexrelid), x.indisvalid,
               x.indisprimary, x.indisunique
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND NOT t.relname = ANY(%(exclude)s)
    """,
    "policies": """
        SELECT p.schemaname || '.' || p.tablename, p.policyname, p.permissive, p.cmd,
               array_to_string(ARRAY(SELECT r FROM unnest(p.roles) r ORDER BY r), ','),
               coalesce(p.qual, ''), coalesce(p.with_check, '')
        FROM pg_policies p
        WHERE p.schemaname = ANY(%(schemas)s) AND NOT p.tablename = ANY(%(exclude)s)
    """,
    "views": """
        SELECT n.nspname || '.' || c.relname, c.relkind::text, pg_get_viewdef(c.oid, true),
               coalesce(c.reloptions, '{}')::text, coalesce(c.relacl::text[], '{}')::text,
               pg_get_userbyid(c.relowner)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('v', 'm')
    """,
    "functions": """
        SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               p.prokind::text, pg_get_function_result(p.oid), l.lanname, p.prosecdef, p.provolatile::text,
               coalesce(p.proconfig, '{}')::text, md5(p.prosrc), coalesce(p.proacl::text[], '{}')::text
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = ANY(%(schemas)s)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype = 'e')
    """,
    "triggers": """
        SELECT n.nspname || '.' || c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal AND NOT c.relname = ANY(%(exclude)s)
    """,
}


def _normalise(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_normalise(v) for v in value)
    return value


def schema_fingerprint(conn, schemas=("public", "auth"), exclude_tables=("migration_progress",)) -> dict:
    """A deterministic description of the schema objects in ``schemas`` (see module docstring)."""
    params = {"schemas": list(schemas), "exclude": list(exclude_tables)}
    result: dict[str, list[tuple]] = {}
    with conn.cursor() as cur:
        for key, query in _QUERIES.items():
            cur.execute(query, params)
            result[key] = sorted(tuple(_normalise(v) for v in row) for row in cur.fetchall())
    if not conn.autocommit:
        conn.rollback()
    return result


def diff_fingerprints(a: dict, b: dict) -> list[str]:
    """Human-readable differences between two fingerprints (empty when equal)."""
    out: list[str] = []
    for key in sorted(set(a) | set(b)):
        rows_a, rows_b = a.get(key, []), b.get(key, [])
        if rows_a == rows_b:
            continue
        # Compare by identity (first two fields for nested objects, first for top-level objects).
        width = 1 if key in ("schemas", "tables", "views", "functions") else 2
        ident_a = {tuple(r[:width]): r for r in rows_a}
        ident_b = {tuple(r[:width]): r for r in rows_b}
        for ident in sorted(set(ident_a) - set(ident_b)):
            out.append(f"{key}: only in first: {' '.join(map(str, ident))}")
        for ident in sorted(set(ident_b) - set(ident_a)):
            out.append(f"{key}: only in second: {' '.join(map(str, ident))}")
        for ident in sorted(set(ident_a) & set(ident_b)):
            if ident_a[ident] != ident_b[ident]:
                out.append(f"{key}: differs: {' '.join(map(str, ident))}: {ident_a[ident]!r} != {ident_b[ident]!r}")
        if not out or not out[-1].startswith(key):
            if len(rows_a) != len(rows_b) or rows_a != rows_b:
                out.append(f"{key}: differs (duplicate identities)")
    return out


def table_counts(conn, tables) -> dict[str, int]:
    """Exact row counts, keyed as given (``schema.table``, or ``table`` for public)."""
    counts: dict[str, int] = {}
    with conn.cursor() as cur:
        for table in tables:
            schema, _, name = table.rpartition(".")
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema or "public", name)))
            counts[table] = cur.fetchone()[0]
    if not conn.autocommit:
        conn.rollback()
    return counts


def capped_count(conn, table: str, cap: int) -> int | None:
    """Rows of `schema.table`, counted up to `cap` + 1 (cheap on any size); None when it does not exist."""
    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
        return None
    schema, _, name = table.rpartition(".")
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) s").format(
        sql.Identifier(schema or "public", name))
    return conn.execute(query, (cap + 1,)).fetchone()[0]


# --- what the API roles can reach: the relations the access diff measures ------------------------------

API_ROLES = ("anon", "authenticated", "service_role")
USERS_TABLE = "auth.users"

_EXPOSED_SQL = """
SELECT c.oid, n.nspname || '.' || c.relname, c.relkind::text, c.relrowsecurity,
       -- primary key columns in key order, with their types
       ARRAY(SELECT a.attname FROM pg_constraint k, unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum
             WHERE k.conrelid = c.oid AND k.contype = 'p' ORDER BY u.ord)::text[],
       ARRAY(SELECT format_type(a.atttypid, a.atttypmod)
             FROM pg_constraint k, unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum
             WHERE k.conrelid = c.oid AND k.contype = 'p' ORDER BY u.ord)::text[],
       -- single-column foreign keys: (column, referenced relation)
       ARRAY(SELECT a.attname || '=' || (fn.nspname || '.' || f.relname) || '=' || format_type(a.atttypid, a.atttypmod)
             FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.conkey[1]
             JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
             WHERE k.conrelid = c.oid AND k.contype = 'f' AND cardinality(k.conkey) = 1 ORDER BY 1)::text[],
       -- columns a copied row may carry (generated and always-identity columns cannot be inserted)
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
             AND NOT a.attisdropped AND a.attgenerated = '' AND a.attidentity <> 'a' ORDER BY a.attnum)::text[],
       ARRAY(SELECT a.attname FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = c.oid UNION
             SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attidentity <> '')::text[],
       -- unique indexes as comma-joined column lists (a membership is unique per user and organization)
       ARRAY(SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM pg_index x
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)
             WHERE x.indrelid = c.oid AND x.indisunique GROUP BY x.indexrelid)::text[],
       -- a view whose rows are the same for every caller: owner's rights, no function of its own (which might
       -- read the caller's JWT), and RLS not applied to its owner on any table it reads
       c.relkind IN ('v', 'm') AND NOT coalesce('security_invoker=true' = ANY(c.reloptions), false)
       AND NOT EXISTS (
           SELECT 1 FROM pg_rewrite rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
           LEFT JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
           LEFT JOIN pg_class b ON d.refclassid = 'pg_class'::regclass AND b.oid = d.refobjid AND b.oid <> c.oid
           WHERE rw.ev_class = c.oid
             AND ((p.oid IS NOT NULL AND p.pronamespace <> 'pg_catalog'::regnamespace)
                  OR (b.oid IS NOT NULL AND b.relrowsecurity
                      AND (b.relforcerowsecurity OR b.relowner <> c.relowner)
                      AND NOT (SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE oid = c.relowner))))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (c.relrowsecurity OR EXISTS (SELECT 1 FROM unnest(%(roles)s::text[]) r(name)
                                   JOIN pg_roles ro ON ro.rolname = r.name
                                   WHERE has_table_privilege(ro.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
                                      OR has_any_column_privilege(ro.oid, c.oid, 'SELECT, INSERT, UPDATE')))
ORDER BY 2
"""


@dataclass(frozen=True)
class ExposedRelation:
    """A table or view of an exposed schema that RLS or the API roles' grants govern."""

    name: str  # schema.relation
    kind: str  # "table" or "view"
    rls: bool
    key: tuple[str, ...]  # primary key columns; empty: rows are identified by a digest of the whole row
    key_types: tuple[str, ...]
    user_columns: tuple[str, ...]  # single-column foreign keys to auth.users
    organization_columns: tuple[str, ...]  # single-column foreign keys to an organization table
    is_organization_table: bool
    is_membership_table: bool  # unique per (user column, organization column)
    insertable: tuple[str, ...]
    defaulted: tuple[str, ...]
    owner_types: tuple[tuple[str, str], ...] = ()  # (owner column, its type): typed comparisons use its index
    same_for_every_caller: bool = False  # a view whose rows do not depend on who reads them (read once per role)

    @property
    def ident(self):
        schema, name = self.name.split(".", 1)
        return sql.Identifier(schema, name)


def organization_tables(foreign_keys: dict[str, list[tuple[str, str]]]) -> set[str]:
    """Tables that play the organization part, from the FK graph alone: referenced (beside auth.users) by
    a table that also references auth.users (a membership), and by at least two other tables."""
    referenced_by: dict[str, set[str]] = {}
    for table, fks in foreign_keys.items():
        for _, target in fks:
            referenced_by.setdefault(target, set()).add(table)
    out = set()
    for target, tables in referenced_by.items():
        if target == USERS_TABLE:
            continue
        memberships = {t for t in tables if any(ref == USERS_TABLE for _, ref in foreign_keys.get(t, []))}
        if memberships and len(tables) >= 3:
            out.add(target)
    return out


def exposed_relations(conn, schemas=("public",), roles=API_ROLES) -> list[ExposedRelation]:
    """Every table and view of `schemas` with RLS enabled or any privilege of an API role (catalog only)."""
    rows = conn.execute(_EXPOSED_SQL, {"schemas": list(schemas), "roles": list(roles)}).fetchall()
    fks = {row[1]: [tuple(f.split("=", 2)[:2]) for f in row[6]] for row in rows}
    types = {row[1]: {f.split("=", 2)[0]: f.split("=", 2)[2] for f in row[6]} for row in rows}
    orgs = organization_tables(fks)
    out = []
    for _, name, relkind, rls, key, key_types, _, insertable, defaulted, uniques, same_for_all in rows:
        users = tuple(c for c, ref in fks[name] if ref == USERS_TABLE)
        organizations = tuple(c for c, ref in fks[name] if ref in orgs)
        membership = any(set(u.split(",")) == {a, b} for u in uniques for a in users for b in organizations)
        out.append(ExposedRelation(
            name=name, kind="view" if relkind in ("v", "m") else "table", rls=bool(rls), key=tuple(key),
            key_types=tuple(key_types), user_columns=users, organization_columns=organizations,
            is_organization_table=name in orgs, is_membership_table=membership, insertable=tuple(insertable),
            defaulted=tuple(defaulted), owner_types=tuple((c, types[name][c]) for c in users + organizations),
            same_for_every_caller=bool(same_for_all)))
    return out
