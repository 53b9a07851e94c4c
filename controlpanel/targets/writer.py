"""Writers during a rehearsal: the old single-tenant application writing while the migration runs.

Two instruments, both on the rehearsal's disposable copy:

- ``SyntheticWriter``: a thread that, a few times a second, impersonates a legacy user (``authenticated`` with
  their JWT claims) and inserts a copy of one of their rows and updates one of them, as the old app does,
  in a transaction that is rolled back (the copy's contents stay comparable). It records how long each
  write took: a write waiting on the migration's locks is what users would feel (max / p99).
- ``WriterGate``: wraps the file's event sink. Before each statement a writer takes ROW EXCLUSIVE on every
  pre-existing table (what any INSERT/UPDATE takes) and holds it while the statement starts; if the statement
  then queues for a relation lock that conflicts with writers, that is recorded (statement, table, mode) and
  the writer lets go. Deterministic at any size: a 5 ms non-concurrent index build is seen as surely as a
  5 minute one. How long writers would have waited is measured from then to the statement's end (or the
  COMMIT of the transaction block it ran in).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from .connection import connect

POLL_SECONDS = 0.005
HOLD_AT_MOST_SECONDS = 2.0


def _ident(table: str) -> sql.Identifier:
    schema, name = table.split(".", 1)
    return sql.Identifier(schema, name)


@dataclass
class WriteSample:
    stage: str
    ms: float
    error: str = ""


@dataclass
class WriterStats:
    table: str | None
    user_id: str | None
    writes: int = 0
    errors: list[str] = field(default_factory=list)
    max_ms: float = 0.0
    p99_ms: float = 0.0
    lock_timeout_ms: int = 0
    lock_waits_over_threshold: list[str] = field(default_factory=list)  # stages where a write hit lock_timeout
    by_stage: dict = field(default_factory=dict)  # stage -> {"writes", "max_ms", "errors"}
    setup_error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class SyntheticWriter(threading.Thread):
    """The old app's writes as one legacy user (see module docstring); ``stage`` names the file running."""

    def __init__(self, target, table: str, columns: list[str], interval: float = 0.2,
                 lock_timeout_seconds: float = 1.0):
        super().__init__(daemon=True)
        self.target, self.table, self.columns, self.interval = target, table, columns, interval
        # A write that cannot get its lock within the threshold fails with lock_not_available (55P03): a wait on
        # the migration's locks told apart from a slow machine, whatever the load.
        self.lock_timeout_ms = max(1, int(lock_timeout_seconds * 1000))
        self.stage = "before"
        self.stopping = threading.Event()
        self.paused = threading.Event()  # set while the rehearsal probes the copy: no deadlock with its probes
        self.samples: list[WriteSample] = []
        self.user_id = None
        self.row: dict | None = None  # the user's row, read by prepare()
        self.setup_error = ""

    def prepare(self) -> bool:
        """Pick the user with a row in the table (as the session role, before anything runs)."""
        try:
            with connect(self.target, application_name="controlpanel-rehearsal-writer") as conn:
                found = conn.execute(sql.SQL("SELECT user_id, to_jsonb(t) FROM {} t WHERE user_id IS NOT NULL "
                                             "ORDER BY user_id LIMIT 1").format(_ident(self.table))).fetchone()
        except psycopg.Error as exc:
            self.setup_error = str(exc).strip().splitlines()[0]
            return False
        if found is None:
            self.setup_error = f"no row with a user_id in {self.table}: nothing for the old app to write"
            return False
        self.user_id, self.row = found
        return True

    def _write(self, conn) -> None:
        row = self.row
        if row is None:  # prepare() returned False: the writer never starts
            raise RuntimeError("the writer has no row to write (prepare() failed)")
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        data = json.dumps(row | {"id": str(uuid.uuid4())}) if "id" in self.columns else json.dumps(row)
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE authenticated")
            conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": str(self.user_id), "role": "authenticated"}),))
            conn.execute(sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM jsonb_populate_record(NULL::{t}, %s)")
                         .format(t=_ident(self.table), c=cols), (data,))
            if "id" in self.columns:
                conn.execute(sql.SQL("UPDATE {t} SET user_id = user_id WHERE id = %s").format(t=_ident(self.table)),
                             (row["id"],))

    def run(self):
        try:
            conn = connect(self.target, application_name="controlpanel-rehearsal-writer")
        except Exception as exc:  # noqa: BLE001 - reported as the writer's setup error, the rehearsal goes on
            self.setup_error = str(exc).splitlines()[0]
            return
        try:
            conn.execute(f"SET lock_timeout = {self.lock_timeout_ms}")
            while not self.stopping.wait(self.interval):
                if self.paused.is_set():
                    continue
                stage, started, error = self.stage, time.monotonic(), ""
                try:
                    self._write(conn)
                except psycopg.Error as exc:
                    error = f"{getattr(exc.diag, 'sqlstate', '') or ''} {str(exc).strip().splitlines()[0]}".strip()
                self.samples.append(WriteSample(stage, round((time.monotonic() - started) * 1000, 2), error))
        except psycopg.Error:
            pass  # the copy is being dropped: the samples so far stand
        finally:
            conn.close()

    def finish(self) -> WriterStats:
        self.stopping.set()
        self.join(timeout=35)
        stats = WriterStats(table=self.table, user_id=str(self.user_id) if self.user_id else None,
                            setup_error=self.setup_error, lock_timeout_ms=self.lock_timeout_ms)
        stats.lock_waits_over_threshold = [s.stage for s in self.samples if s.error.startswith("55P03")]
        timings = sorted(s.ms for s in self.samples)
        stats.writes = len(timings)
        if timings:
            stats.max_ms = timings[-1]
            stats.p99_ms = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        stats.errors = [f"{s.stage}: {s.error}" for s in self.samples
                        if s.error and not s.error.startswith("55P03")][:10]
        for s in self.samples:
            entry = stats.by_stage.setdefault(s.stage, {"writes": 0, "max_ms": 0.0, "errors": 0})
            entry["writes"] += 1
            entry["max_ms"] = max(entry["max_ms"], s.ms)
            entry["errors"] += 1 if s.error and not s.error.startswith("55P03") else 0
        return stats


@dataclass
class WriterBlock:
    """A statement that queued for a lock conflicting with writers on a pre-existing table."""

    file: str
    statement_index: int
    statement: str
    table: str
    mode: str
    blocked_seconds: float = 0.0  # from the lock being granted to the statement's end (or the file's COMMIT)
    until: str = "statement end"

    def as_dict(self) -> dict:
        return asdict(self)


class WriterGate:
    """An event sink wrapper that tests, before each statement, whether it would block writers."""

    def __init__(self, sink, target, migration_conn, tables: list[str], file: str):
        self.sink, self.tables, self.file = sink, tables, file
        self.migration = migration_conn  # read only between statements, in the thread that runs the file
        self.pid = migration_conn.info.backend_pid
        self.conn = connect(target, application_name="controlpanel-rehearsal-writer-gate")
        self.conn.execute("SET lock_timeout = '20ms'")
        self.watch = connect(target, application_name="controlpanel-rehearsal-writer-gate")
        self.blocks: list[WriterBlock] = []
        self.open: list[tuple[WriterBlock, float]] = []  # granted at (monotonic) and still held
        self.observer: threading.Thread | None = None
        self.done = threading.Event()

    def emit(self, kind: str, message: str, **data) -> None:
        self.sink.emit(kind, message, **data)
        if kind == "statement":
            self._hold(data.get("index"), message)
        elif kind == "info" and "ms" in data:
            self._statement_ended()

    def _in_transaction(self) -> bool:
        return self.migration.info.transaction_status != TransactionStatus.IDLE

    def _hold(self, index, text) -> None:
        self._release()
        if self.open and self._in_transaction():
            return  # writers are already blocked until this transaction's COMMIT
        try:
            self.conn.execute("BEGIN")
            self.conn.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(
                sql.SQL(", ").join(_ident(t) for t in self.tables)))
        except psycopg.errors.LockNotAvailable:
            self.conn.execute("ROLLBACK")  # the file already holds a conflicting lock from an earlier statement
            return
        except psycopg.Error:
            self.conn.execute("ROLLBACK")
            return
        self.done.clear()
        self.observer = threading.Thread(target=self._observe, args=(index, text), daemon=True)
        self.observer.start()

    def _observe(self, index, text) -> None:
        deadline = time.monotonic() + HOLD_AT_MOST_SECONDS
        seen = None
        try:
            while time.monotonic() < deadline and seen is None and not self.done.is_set():
                rows = self.watch.execute(
                    "SELECT l.locktype, l.mode, n.nspname || '.' || c.relname FROM pg_locks l "
                    "LEFT JOIN pg_class c ON c.oid = l.relation LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE l.pid = %s AND NOT l.granted", (self.pid,)).fetchall()
                for locktype, mode, relation in rows:
                    seen = (locktype, mode, relation)
                if seen is None:
                    self.done.wait(POLL_SECONDS)
        except psycopg.Error:
            pass
        finally:
            try:
                self.conn.execute("ROLLBACK")
            except psycopg.Error:
                pass
        if seen and seen[0] == "relation" and seen[2] in self.tables:
            block = WriterBlock(self.file, index, text[:200], seen[2], seen[1])
            self.blocks.append(block)
            self.open.append((block, time.monotonic()))

    def _release(self) -> None:
        if self.observer is not None:
            self.done.set()
            self.observer.join(timeout=HOLD_AT_MOST_SECONDS + 1)
            self.observer = None

    def _statement_ended(self) -> None:
        """Locks taken inside a transaction block are held until it ends: measured to then."""
        self._release()
        if not self._in_transaction():
            now = time.monotonic()
            for block, granted in self.open:
                if block.until != "statement end":
                    block.until = "COMMIT"
                block.blocked_seconds = round(now - granted, 3)
            self.open = []
        else:
            for block, _ in self.open:
                block.until = "the transaction's COMMIT"

    def finish(self) -> list[WriterBlock]:
        """At the file's end (after its COMMIT): locks of a one-transaction file were held until here."""
        self._release()
        now = time.monotonic()
        for block, granted in self.open:
            block.blocked_seconds, block.until = round(now - granted, 3), "the file's COMMIT"
        self.open = []
        for conn in (self.conn, self.watch):
            try:
                conn.close()
            except psycopg.Error:
                pass
        return self.blocks
