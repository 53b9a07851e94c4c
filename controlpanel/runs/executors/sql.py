"""SQL kinds: a bundle file, the backfill, the validation tests."""

from django.conf import settings

from controlpanel.runbook.validation import judge
from controlpanel.targets.sqlrun import ListSink, RunOptions, run_script

from ..bundle import verified_script
from .base import StepFailed


def run_options(ctx) -> RunOptions:
    """How the step's SQL waits for locks and stops on cancel (settings.STEP_LOCK_*)."""
    return RunOptions(
        lock_timeout_ms=settings.STEP_LOCK_TIMEOUT_MS,
        statement_timeout_ms=settings.STEP_STATEMENT_TIMEOUT_MS,
        lock_retries=settings.STEP_LOCK_RETRIES,
        is_cancelled=ctx.is_cancelled,
    )


def run_sql_file(ctx) -> dict:
    script = verified_script(ctx.run, ctx.step.file)
    tee = TeeSink(ctx.sink)
    result = run_script(ctx.conn, script, tee, run_options(ctx))
    summary = {"file": script.name, "statements": result.statements, "rows": result.rows,
               "lock_retries": result.all_lock_retries, "lock_retry_notices": result.lock_retry_notices,
               "seconds": round(result.seconds, 3), "transactional": result.transactional}
    # The file ran, but its own checks may have said it did not work ("Found 20000 … without organization").
    verdict = judge(tee.kept.events, expect_results=False)
    if not verdict.passed:
        raise StepFailed(verdict.message, reported_failures=list(verdict.reported_failures), **summary)
    return summary


def run_backfill(ctx) -> dict:
    summary = run_sql_file(ctx)
    rows = ctx.conn.execute(
        "SELECT table_name, rows_total, rows_done, status FROM public.migration_progress ORDER BY table_name"
    ).fetchall()
    summary["progress"] = [{"table": t, "rows_total": total, "rows_done": done, "status": st}
                           for t, total, done, st in rows]
    return summary


class TeeSink:
    """Writes to the live log and keeps NOTICEs for parsing (not those the file asked not to see: as under psql)."""

    def __init__(self, live):
        self.live, self.kept = live, ListSink()

    @property
    def current(self):
        return self.live.current

    def emit(self, kind, message, **data):
        self.live.emit(kind, message, **data)
        if kind == "notice" and not data.get("quiet"):
            self.kept.emit(kind, message, **data)


def run_sql_tests(ctx) -> dict:
    script = verified_script(ctx.run, ctx.step.file)
    tee = TeeSink(ctx.sink)
    result = run_script(ctx.conn, script, tee, run_options(ctx))
    verdict = judge(tee.kept.events)
    summary = {"file": script.name, "categories": verdict.as_dicts(), "seconds": round(result.seconds, 3),
               "reported_failures": list(verdict.reported_failures), "lock_retries": result.all_lock_retries}
    if not verdict.passed:
        raise StepFailed(verdict.message, **summary)
    return summary
