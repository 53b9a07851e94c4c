"""Row contents and storage identity of a target's pre-existing tables: what a migration must not change.

Used by the rehearsal on its disposable copy (never on a live target: ``save_row_digests`` writes a digest
table per table into the schema ``cp_rehearsal_digest``, outside the fingerprinted public/auth schemas).

- ``table_shapes(conn)``: the base tables of ``public`` plus ``auth.users`` with their primary key and columns.
- ``relfilenodes(conn, tables)``: a table whose relfilenode changed was rewritten (ACCESS EXCLUSIVE for the
  whole rewrite: a volatile default, a type change, VACUUM FULL, …).
- ``save_row_digests`` / ``compare_row_digests``: per row (keyed by its primary key) an array with a hash of
  each pre-existing column, before vs after, in one pass each: rows lost, rows changed (first keys) and the
  columns that changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

DIGEST_SCHEMA = "cp_rehearsal_digest"
EXAMPLE_KEYS = 20


@dataclass(frozen=True)
class TableShape:
    table: str  # schema.name
    primary_key: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def ident(self) -> sql.Identifier:
        schema, name = self.table.split(".", 1)
        return sql.Identifier(schema, name)

    @property
    def digest_ident(self) -> sql.Identifier:
        return sql.Identifier(DIGEST_SCHEMA, self.table.replace(".", "__"))

    def key_sql(self, alias: str) -> sql.Composable:
        return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in self.primary_key))

    def row_sql(self, alias: str) -> sql.Composable:
        return sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(
            sql.SQL("hashtext(coalesce({}::text, '<null>'))").format(sql.Identifier(alias, c)) for c in self.columns))


def table_shapes(conn, schemas=("public",), extra=("auth.users",)) -> list[TableShape]:
    """Base tables of ``schemas`` (and ``extra``) with primary key and columns, in catalog order."""
    rows = conn.execute(
        """
        SELECT n.nspname || '.' || c.relname,
               ARRAY(SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid
                     AND a.attnum = ANY (x.indkey) WHERE x.indrelid = c.oid AND x.indisprimary ORDER BY a.attnum),
               ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                     AND NOT a.attisdropped ORDER BY a.attnum)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p')
          AND (n.nspname = ANY (%s) OR n.nspname || '.' || c.relname = ANY (%s))
        ORDER BY 1
        """, (list(schemas), list(extra))).fetchall()
    return [TableShape(table, tuple(pk), tuple(columns)) for table, pk, columns in rows]


def relfilenodes(conn, tables) -> dict[str, int]:
    """Storage file number per table (schema.name); missing tables are left out."""
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.relfilenode FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname || '.' || c.relname = ANY (%s)",
        (list(tables),)).fetchall()
    return dict(rows)


def current_xid(conn) -> int:
    """A transaction id to count later writes from (rows_written_since)."""
    return int(conn.execute("SELECT xid(pg_catalog.pg_current_xact_id())::text::bigint").fetchone()[0])


def rows_written_since(conn, tables, xid: int) -> int:
    """Rows of ``tables`` (schema.name) inserted or updated by transactions after ``xid``: the row versions
    whose xmin is newer. Counts what DO blocks and procedures wrote, which statement row counts do not show."""
    total = 0
    for table in tables:
        schema, name = table.split(".", 1)
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            continue
        total += conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE age(xmin) < age(%s::text::xid)").format(
            sql.Identifier(schema, name)), (xid,)).fetchone()[0]
    return total


def save_row_digests(conn, shapes: list[TableShape]) -> dict:
    """Store (key, column hashes) per table; returns what can be compared later.

    Tables without a primary key cannot be compared row by row: they are returned under "skipped"."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(DIGEST_SCHEMA)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(DIGEST_SCHEMA)))
    saved, skipped = {}, {}
    for shape in shapes:
        if not shape.primary_key:
            skipped[shape.table] = "no primary key"
            continue
        conn.execute(sql.SQL("CREATE TABLE {d} AS SELECT {k} AS k, {h} AS h FROM {t} t").format(
            d=shape.digest_ident, k=shape.key_sql("t"), h=shape.row_sql("t"), t=shape.ident))
        saved[shape.table] = {"columns": list(shape.columns), "primary_key": list(shape.primary_key)}
    return {"tables": saved, "skipped": skipped}


def compare_row_digests(conn, saved: dict) -> dict[str, dict]:
    """Per saved table: rows lost, rows whose pre-existing columns changed (first keys), columns changed."""
    out: dict[str, dict] = {}
    for table, info in saved["tables"].items():
        shape = TableShape(table, tuple(info["primary_key"]), tuple(info["columns"]))
        present = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
        if not present:
            out[table] = {"error": "table missing after the migration"}
            continue
        current = set(r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,)).fetchall())
        gone = [c for c in shape.columns if c not in current]
        if gone:
            out[table] = {"error": f"pre-existing column(s) dropped: {', '.join(gone)}", "columns_changed": gone}
            continue
        lost, changed, examples = conn.execute(sql.SQL(
            "SELECT count(*) FILTER (WHERE x.k IS NULL), count(*) FILTER (WHERE x.h <> d.h), "
            "(array_agg(d.k ORDER BY d.k) FILTER (WHERE x.k IS NULL OR x.h <> d.h))[1:{n}] "
            "FROM {d} d LEFT JOIN (SELECT {k} AS k, {h} AS h FROM {t} t) x ON x.k = d.k").format(
            d=shape.digest_ident, k=shape.key_sql("t"), h=shape.row_sql("t"), t=shape.ident,
            n=sql.Literal(EXAMPLE_KEYS))).fetchone()
        columns_changed = []
        if changed:
            positions = conn.execute(sql.SQL(
                "SELECT DISTINCT u.i FROM {d} d JOIN (SELECT {k} AS k, {h} AS h FROM {t} t) x ON x.k = d.k "
                "AND x.h <> d.h, unnest(d.h, x.h) WITH ORDINALITY AS u(a, b, i) WHERE u.a <> u.b ORDER BY 1").format(
                d=shape.digest_ident, k=shape.key_sql("t"), h=shape.row_sql("t"), t=shape.ident)).fetchall()
            columns_changed = [shape.columns[i - 1] for (i,) in positions]
        out[table] = {"rows_lost": lost, "rows_changed": changed, "examples": list(examples or []),
                      "columns_changed": columns_changed}
    return out


def drop_row_digests(conn) -> None:
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(DIGEST_SCHEMA)))
