"""Runs a parsed SQL script on a target connection, statement by statement, reporting as it goes.

One transaction per file where PostgreSQL allows it; a file that manages its own transactions (or has
statements that refuse a transaction block) runs in autocommit, its own BEGIN/COMMIT honoured.
Lock timeouts and deadlocks (a writer holding a lock the file needs next) are retried with back-off from the
start of the current transaction.
"""

import time
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
    is_cancelled: callable = field(default=lambda: False)


@dataclass
class ScriptResult:
    statements: int = 0
    rows: int = 0
    lock_retries: int = 0
    seconds: float = 0.0
    transactional: bool = True


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


def _notice_handler(sink: EventSink):
    def handle(diag):
        sink.emit("notice", diag.message_primary or "", severity=diag.severity)

    return handle


def run_script(conn: psycopg.Connection, script: Script, sink: EventSink, options: RunOptions | None = None
               ) -> ScriptResult:
    options = options or RunOptions()
    conn.autocommit = True
    handler = _notice_handler(sink)
    conn.add_notice_handler(handler)
    result = ScriptResult(transactional=script.transactional)
    started = time.monotonic()
    try:
        conn.execute(f"SET lock_timeout = {int(options.lock_timeout_ms)}")
        conn.execute(f"SET statement_timeout = {int(options.statement_timeout_ms)}")
        resume_at = 0  # index into script.statements where the current (re)try starts
        while True:
            try:
                _run_from(conn, script, resume_at, sink, result, options)
                break
            except (errors.LockNotAvailable, errors.DeadlockDetected) as exc:
                failed_at, block_start = exc._cp_position  # set by _run_from
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
            exc._cp_position = (i, block_start)
            raise
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
        rowcount = cur.rowcount if cur.rowcount and cur.rowcount > 0 else 0
        result.statements += 1
        result.rows += rowcount
        sink.emit("info", f"    ok in {elapsed_ms:.0f} ms, {rowcount} rows",
                  index=statement.index, ms=round(elapsed_ms, 1), rows=rowcount)
    if script.transactional:
        conn.execute("COMMIT")
