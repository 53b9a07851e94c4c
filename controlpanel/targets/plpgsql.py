"""plpgsql_check on a target (a disposable copy: it creates the extension there). Rows, not verdicts.

`plpgsql_check_rows(conn, names)` resolves each name (schema.name, every overload) to its functions and
procedures and returns plpgsql_check's findings for each. Trigger functions are checked against a table
one of their triggers is on (plpgsql_check needs it for NEW/OLD); one with no trigger is checked as
"not attached". Raises PlpgsqlCheckUnavailable when the extension cannot be created.
"""

from dataclasses import dataclass

import psycopg


class PlpgsqlCheckUnavailable(Exception):
    pass


@dataclass(frozen=True)
class CheckRow:
    function: str  # schema.name(args)
    level: str  # error / warning / warning extra / performance
    message: str
    line: int | None
    sqlstate: str | None
    statement: str | None
    query: str | None


def ensure_extension(conn) -> str:
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    except psycopg.Error as exc:
        if not conn.autocommit:
            conn.rollback()
        raise PlpgsqlCheckUnavailable(
            f"plpgsql_check cannot be created on the copy: {str(exc).splitlines()[0]} "
            "(Debian package postgresql-15-plpgsql-check; `make install-plpgsql-check`)") from exc
    return conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'plpgsql_check'").fetchone()[0]


def resolve(conn, names) -> list[tuple[int, str, str, int | None]]:
    """(oid, signature, language, a trigger's table oid or None) of the plpgsql routines named."""
    return conn.execute(
        """
        SELECT p.oid, n.nspname || '.' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')', l.lanname,
               (SELECT t.tgrelid FROM pg_trigger t WHERE t.tgfoid = p.oid ORDER BY t.oid LIMIT 1)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE (n.nspname || '.' || p.proname) = ANY(%s) OR p.oid::text = ANY(%s)
        ORDER BY 2
        """, ([str(n) for n in names], [str(n) for n in names])).fetchall()


def plpgsql_check_rows(conn, names) -> tuple[list[CheckRow], list[str]]:
    """(findings, routines checked) for the plpgsql routines among `names` (others are not plpgsql's to check)."""
    ensure_extension(conn)
    rows, checked = [], []
    for oid, signature, language, trigger_rel in resolve(conn, names):
        if language != "plpgsql":
            continue
        is_trigger = conn.execute("SELECT prorettype = 'trigger'::regtype FROM pg_proc WHERE oid = %s",
                                  (oid,)).fetchone()[0]
        if is_trigger and trigger_rel is None:
            continue  # plpgsql_check needs the table of a trigger; an unattached one is checked when attached
        result = conn.execute(
            "SELECT level, message, lineno, sqlstate, statement, query FROM plpgsql_check_function_tb(%s, %s, "
            "fatal_errors => false)", (oid, trigger_rel or 0)).fetchall()
        checked.append(signature)
        rows += [CheckRow(signature, level, message, line, sqlstate, statement, query)
                 for level, message, line, sqlstate, statement, query in result]
    if not conn.autocommit:
        conn.rollback()
    return rows, checked
