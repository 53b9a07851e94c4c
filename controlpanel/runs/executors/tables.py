"""Partial rollback actions from the runbook: RLS off/on for one table, organization indexes off/on."""

import psycopg
from django.conf import settings
from psycopg import sql

from controlpanel.targets.sqlrun import execute_with_lock_retries
from controlpanel.targets.tenancy import (
    ORGANIZATION_TABLES,
    existing_tables,
    organization_indexes,
    tenant_tables,
)

from ..models import Attempt, StepRun
from .base import StepFailed
from .sql import run_options


def _set_lock_timeout(ctx):
    ctx.conn.execute(f"SET lock_timeout = {int(settings.STEP_LOCK_TIMEOUT_MS)}")


def _execute(ctx, statement, before_retry=None) -> None:
    """A busy table delays the action (DROP INDEX CONCURRENTLY waits for every transaction on it) instead of
    failing it: retried as the SQL files are."""
    execute_with_lock_retries(ctx.conn, statement, ctx.sink, run_options(ctx), before_retry)


def _table(ctx) -> str:
    table = ctx.params.get("table", "")
    allowed = tenant_tables(ctx.conn) + existing_tables(ctx.conn, ORGANIZATION_TABLES)
    if table not in allowed:
        raise StepFailed(f"“{table}” is not a tenant table of this target (choose one of {', '.join(allowed)}).")
    return table


def _rls(ctx, enable: bool) -> dict:
    table = _table(ctx)
    _set_lock_timeout(ctx)
    verb = "ENABLE" if enable else "DISABLE"
    statement = sql.SQL("ALTER TABLE public.{} " + verb + " ROW LEVEL SECURITY").format(sql.Identifier(table))
    ctx.sink.emit("statement", statement.as_string(ctx.conn))
    _execute(ctx, statement)
    enabled = ctx.conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass",
                               (f"public.{table}",)).fetchone()[0]
    if enabled != enable:
        raise StepFailed(f"RLS on {table} is still {'off' if not enabled else 'on'}.")
    if not enable:
        ctx.sink.emit("error", f"SECURITY EXPOSURE: RLS is OFF on public.{table}; every API role sees every row.")
    return {"table": table, "rls_enabled": enabled}


def _drop_indexes(ctx) -> dict:
    _set_lock_timeout(ctx)
    dropped: list[dict] = []
    for index in organization_indexes(ctx.conn):
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS public.{}").format(sql.Identifier(index["index"]))
        ctx.sink.emit("statement", statement.as_string(ctx.conn))
        try:
            _execute(ctx, statement)
        except psycopg.Error as exc:  # keep the definitions of those already gone, so they can be re-created
            raise StepFailed(f"Dropping {index['index']} failed: {str(exc).strip()}", dropped=dropped) from None
        dropped.append(index)
    return {"dropped": dropped}


def _drop_invalid(ctx, name: str) -> None:
    invalid = ctx.conn.execute("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                               (f"public.{name}",)).fetchone()
    if invalid and invalid[0]:
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS public.{}").format(sql.Identifier(name))
        ctx.sink.emit("statement", statement.as_string(ctx.conn) + " (an interrupted build left it INVALID)")
        _execute(ctx, statement)


def _dropped_since_last_create(run) -> list[dict]:
    """Definitions dropped by every drop attempt (succeeded or failed half-way) since the last re-creation."""
    attempts = Attempt.objects.filter(step__run=run, step__key__in=("rollback.drop_indexes", "rollback.create_indexes"),
                                      finished_at__isnull=False).order_by("finished_at")
    dropped: dict[str, dict] = {}
    for attempt in attempts:
        if attempt.step.key == "rollback.create_indexes" and attempt.status == StepRun.Status.SUCCEEDED:
            dropped.clear()
        elif attempt.step.key == "rollback.drop_indexes":
            for index in attempt.result.get("dropped") or (attempt.error or {}).get("dropped") or []:
                dropped[index["index"]] = index
    return list(dropped.values())


def _create_indexes(ctx) -> dict:
    """Re-create what the drops in this run removed, concurrently (no writer blocked)."""
    dropped = _dropped_since_last_create(ctx.run)
    if not dropped:
        raise StepFailed("No dropped organization indexes recorded in this run.")
    _set_lock_timeout(ctx)
    created = []
    for index in dropped:
        definition = index["definition"].replace("CREATE INDEX ", "CREATE INDEX CONCURRENTLY IF NOT EXISTS ", 1)
        ctx.sink.emit("statement", definition)
        # A CREATE INDEX CONCURRENTLY that timed out leaves an INVALID index that IF NOT EXISTS would keep.
        _drop_invalid(ctx, index["index"])
        _execute(ctx, sql.SQL(definition), before_retry=lambda name=index["index"]: _drop_invalid(ctx, name))
        created.append(index["index"])
    return {"created": created}


ACTIONS = {
    "rollback.rls_disable": lambda ctx: _rls(ctx, enable=False),
    "rollback.rls_enable": lambda ctx: _rls(ctx, enable=True),
    "rollback.drop_indexes": _drop_indexes,
    "rollback.create_indexes": _create_indexes,
}


def run_table_action(ctx) -> dict:
    return ACTIONS[ctx.step.key](ctx)
