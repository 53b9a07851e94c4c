"""Runs a parsed SQL script on a target connection, statement by statement, reporting as it goes.

One transaction per file where PostgreSQL allows it; a file that manages its own transactions (or has
statements that refuse a transaction block) runs in autocommit, its own BEGIN/COMMIT honoured.
Lock timeouts and deadlocks (a writer holding a lock the file needs next) are retried with back-off from the
start of the current transaction.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus

from .sqlscript import Script


class EventSink(Protocol):
    def emit(self, kind: str, message: str, **data) -> None: ...


class ListSink:
    """Collects events in memory (rehearsals, tests)."""

    def __init__(self):
        self.events: list[dict] = []

    def emit(self, kind: str, message: str, **data) -> None:
        self.events.append({"kind": kind, "message": message, **data})


# A bundle's own lock-retry loop says so in a NOTICE ("tenant tables busy (attempt 3 of 30), retrying",
# 'lock not available for "…", retry 2 of 10'): counted as lock retries, like the runner's own.
LOCK_RETRY_NOTICE = re.compile(r"(lock|busy).*\bretry(ing)?\b", re.I | re.S)
# Files hide NOTICEs (client_min_messages = warning) to silence "does not exist, skipping"; that would hide their
# retry NOTICEs too. The runner keeps receiving every NOTICE and marks those the file asked not to see as quiet.
CLIENT_MIN_MESSAGES = re.compile(r"^\s*(?:SET\s+(?:SESSION\s+)?client_min_messages\s*(?:=|TO)\s*'?(\w+)'?"
                                 r"|RESET\s+client_min_messages)", re.I)
SEVERITY_ORDER = ["debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error"]


class StatementFailed(Exception):
    def __init__(self, detail: dict):
        super().__init__(detail["message"])
        self.detail = detail


class ScriptCancelled(Exception):
    pass


@dataclass
class RunOptions:
    lock_timeout_ms: int = 5000
    statement_timeout_ms: int = 0  # 0: none (the backfill may take long; cancel is always available)
    lock_retries: int = 5
    backoff_seconds: float = 1.0
    is_cancelled: Callable[[], bool] = field(default=lambda: False)


class _LockConflict(Exception):
    """A lock timeout or deadlock on statement `statement`; the retry starts again at `block_start`."""

    def __init__(self, error: errors.LockNotAvailable | errors.DeadlockDetected, statement: int, block_start: int):
        super().__init__(str(error))
        self.error, self.statement, self.block_start = error, statement, block_start


@dataclass
class ScriptResult:
    statements: int = 0
    rows: int = 0
    lock_retries: int = 0  # the runner's retries after a lock timeout or deadlock
    lock_retry_notices: int = 0  # the file's own retries, from its NOTICEs
    seconds: float = 0.0
    transactional: bool = True
    file_min_messages: str = "notice"  # the level the file asked for; quieter NOTICEs are marked quiet

    @property
    def all_lock_retries(self) -> int:
        return self.lock_retries + self.lock_retry_notices


def error_detail(exc: psycopg.Error, script: Script, statement) -> dict:
    diag = exc.diag
    position = int(diag.statement_position) if diag.statement_position else None
    return {
        "message": (diag.message_primary or str(exc)).strip(),
        "sqlstate": diag.sqlstate or getattr(exc, "sqlstate", None),
        "detail": diag.message_detail,
        "hint": diag.message_hint,
        "context": diag.context,
        "file": script.name,
        "statement_index": statement.index,
        "statement": statement.text,
        "line": statement.line,
        "position": position,
    }


def _notice_handler(sink: EventSink, result: ScriptResult):
    def handle(diag):
        message = diag.message_primary or ""
        severity = (diag.severity_nonlocalized or diag.severity or "NOTICE").lower()
        data = {"severity": diag.severity}
        if LOCK_RETRY_NOTICE.search(message):
            result.lock_retry_notices += 1
            data["lock_retry"] = True
        elif _rank(severity) < _rank(result.file_min_messages):
            data["quiet"] = True
        sink.emit("notice", message, **data)

    return handle


def _rank(level: str) -> int:
    return SEVERITY_ORDER.index(level) if level in SEVERITY_ORDER else SEVERITY_ORDER.index("notice")


def _keep_notices_visible(conn, statement_text: str, result: ScriptResult) -> None:
    """After the file changes client_min_messages: remember its level, keep receiving NOTICEs anyway."""
    match = CLIENT_MIN_MESSAGES.match(statement_text)
    if match:
        result.file_min_messages = (match.group(1) or "notice").lower()
        conn.execute("SET client_min_messages = notice")


def run_script(conn: psycopg.Connection, script: Script, sink: EventSink, options: RunOptions | None = None
               ) -> ScriptResult:
    options = options or RunOptions()
    conn.autocommit = True
    result = ScriptResult(transactional=script.transactional)
    handler = _notice_handler(sink, result)
    conn.add_notice_handler(handler)
    started = time.monotonic()
    try:
        conn.execute("SET client_min_messages = notice")
        conn.execute(f"SET lock_timeout = {int(options.lock_timeout_ms)}")
        conn.execute(f"SET statement_timeout = {int(options.statement_timeout_ms)}")
        resume_at = 0  # index into script.statements where the current (re)try starts
        while True:
            try:
                _run_from(conn, script, resume_at, sink, result, options)
                break
            except _LockConflict as conflict:
                exc, failed_at, block_start = conflict.error, conflict.statement, conflict.block_start
                _rollback_if_open(conn)
                if result.lock_retries >= options.lock_retries:
                    raise StatementFailed(error_detail(exc, script, script.statements[failed_at])) from None
                result.lock_retries += 1
                wait = options.backoff_seconds * 2 ** (result.lock_retries - 1)
                resume_at = block_start
                what = "Deadlock" if isinstance(exc, errors.DeadlockDetected) else "Lock timeout"
                sink.emit(
                    "info",
                    f"{what} on statement {failed_at + 1}; retry {result.lock_retries}/{options.lock_retries} "
                    f"from statement {resume_at + 1} in {wait:.1f}s",
                )
                _sleep_unless_cancelled(wait, options)
    finally:
        conn.remove_notice_handler(handler)
        result.seconds = time.monotonic() - started
    return result


def execute_with_lock_retries(conn, statement, sink: EventSink, options: RunOptions, before_retry=None) -> None:
    """One statement outside a script (built by the panel, e.g. a partial-rollback action), retried after a lock
    timeout or deadlock with the same back-off as run_script's files; ``before_retry()`` repairs what the failed
    attempt left (an INVALID index of a concurrent build). The caller sets lock_timeout."""
    for retry in range(1, options.lock_retries + 2):
        try:
            conn.execute(statement)
            return
        except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
            if retry > options.lock_retries:
                raise
            wait = options.backoff_seconds * 2 ** (retry - 1)
            what = "Deadlock" if isinstance(exc, errors.DeadlockDetected) else "Lock timeout"
            text = statement.as_string(conn) if hasattr(statement, "as_string") else str(statement)
            sink.emit("info", f"{what} on {text[:160]}; retry {retry}/{options.lock_retries} in {wait:.1f}s",
                      lock_retry=True)
            _sleep_unless_cancelled(wait, options)
            if before_retry is not None:
                before_retry()


def _sleep_unless_cancelled(seconds: float, options: RunOptions) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if options.is_cancelled():
            raise ScriptCancelled("cancelled while waiting to retry")
        time.sleep(0.2)


def _rollback_if_open(conn) -> None:
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        conn.execute("ROLLBACK")


def _run_from(conn, script: Script, start: int, sink: EventSink, result: ScriptResult, options: RunOptions):
    statements = script.statements
    # Where a retry restarts: the whole file when we wrap it, else the file's own open BEGIN (or the statement).
    block_start = 0 if script.transactional else start
    if script.transactional:
        conn.execute("BEGIN")
    for i in range(start, len(statements)):
        statement = statements[i]
        if options.is_cancelled():
            _rollback_if_open(conn)
            raise ScriptCancelled(f"cancelled before statement {statement.index}")
        if not script.transactional:
            in_block = conn.info.transaction_status == TransactionStatus.INTRANS
            if statement.transaction_control == "begin" or not in_block:
                block_start = i
        first_line = statement.text.strip().splitlines()[0][:160] if statement.text.strip() else ""
        sink.emit("statement", f"[{statement.index}/{len(statements)}] {first_line}",
                  index=statement.index, line=statement.line, file=script.name)
        began = time.monotonic()
        try:
            cur = conn.execute(statement.text)
        except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
            # Both mean "another session holds what we need": safe to retry from the transaction's start.
            raise _LockConflict(exc, i, block_start) from exc
        except errors.QueryCanceled as exc:
            _rollback_if_open(conn)
            if options.is_cancelled():
                raise ScriptCancelled(f"cancelled during statement {statement.index}") from None
            raise StatementFailed(error_detail(exc, script, statement)) from None
        except psycopg.Error as exc:
            detail = error_detail(exc, script, statement)
            _rollback_if_open(conn)
            raise StatementFailed(detail) from None
        elapsed_ms = (time.monotonic() - began) * 1000
        _keep_notices_visible(conn, statement.text, result)
        rowcount = cur.rowcount if cur.rowcount and cur.rowcount > 0 else 0
        result.statements += 1
        result.rows += rowcount
        sink.emit("info", f"    ok in {elapsed_ms:.0f} ms, {rowcount} rows",
                  index=statement.index, ms=round(elapsed_ms, 1), rows=rowcount)
    if script.transactional:
        conn.execute("COMMIT")
