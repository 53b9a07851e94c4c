"""SQL kinds: a bundle file, the backfill, the validation tests."""

import re

from django.conf import settings

from controlpanel.targets.sqlrun import ListSink, RunOptions, run_script

from ..bundle import verified_script
from ..runner import StepFailed

RESULT_LINE = re.compile(r"RESULT:\s*\[?(?P<category>.+?)\]?\s+tests\s+(?P<status>PASSED|FAILED)", re.I)


def _options(ctx) -> RunOptions:
    return RunOptions(
        lock_timeout_ms=settings.STEP_LOCK_TIMEOUT_MS,
        statement_timeout_ms=settings.STEP_STATEMENT_TIMEOUT_MS,
        lock_retries=settings.STEP_LOCK_RETRIES,
        is_cancelled=ctx.is_cancelled,
    )


def run_sql_file(ctx) -> dict:
    script = verified_script(ctx.run, ctx.step.file)
    result = run_script(ctx.conn, script, ctx.sink, _options(ctx))
    return {"file": script.name, "statements": result.statements, "rows": result.rows,
            "lock_retries": result.lock_retries, "seconds": round(result.seconds, 3),
            "transactional": result.transactional}


def run_backfill(ctx) -> dict:
    summary = run_sql_file(ctx)
    rows = ctx.conn.execute(
        "SELECT table_name, rows_total, rows_done, status FROM public.migration_progress ORDER BY table_name"
    ).fetchall()
    summary["progress"] = [{"table": t, "rows_total": total, "rows_done": done, "status": st}
                           for t, total, done, st in rows]
    return summary


class TeeSink:
    """Writes to the live log and keeps NOTICEs for parsing."""

    def __init__(self, live):
        self.live, self.kept = live, ListSink()

    @property
    def current(self):
        return self.live.current

    def emit(self, kind, message, **data):
        self.live.emit(kind, message, **data)
        if kind == "notice":
            self.kept.emit(kind, message, **data)


def parse_test_notices(messages: list[str]) -> list[dict]:
    """Group NOTICE lines into categories: detail lines belong to the RESULT line that follows them."""
    categories, details = [], []
    for message in messages:
        match = RESULT_LINE.search(message)
        if match:
            categories.append({"category": match["category"].strip(), "status": match["status"].upper(),
                               "details": details})
            details = []
        else:
            details.append(message)
    return categories


def run_sql_tests(ctx) -> dict:
    script = verified_script(ctx.run, ctx.step.file)
    tee = TeeSink(ctx.sink)
    result = run_script(ctx.conn, script, tee, _options(ctx))
    categories = parse_test_notices([e["message"] for e in tee.kept.events])
    summary = {"file": script.name, "categories": categories, "seconds": round(result.seconds, 3)}
    failed = [c["category"] for c in categories if c["status"] != "PASSED"]
    if not categories:
        raise StepFailed("The validation file printed no RESULT lines.", **summary)
    if failed:
        raise StepFailed(f"Validation FAILED: {', '.join(failed)}", **summary)
    return summary
