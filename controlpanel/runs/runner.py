"""Executes one step attempt in a Celery worker: fencing, the target lock, heartbeat, live progress.

Exclusion is a session-level advisory lock on the target, held on a dedicated connection for the whole
step: a duplicate delivery, a second worker or a second run finds it taken and changes nothing. If the
worker dies, PostgreSQL drops the lock with the connection; the heartbeat stops and the reaper marks the
attempt interrupted for a person to decide.
"""

import logging
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from controlpanel.evidence.lockwatch import LockSummary, sample_locks
from controlpanel.runbook.definition import RUNBOOK, Kind
from controlpanel.targets.connection import TargetUnavailable, connect, scalar
from controlpanel.targets.secrets import redact_data
from controlpanel.targets.sqlrun import ScriptCancelled, StatementFailed
from controlpanel.targets.sqlscript import ScriptError

from . import engine
from .bundle import BundleChanged
from .executors import EXECUTORS
from .executors.base import DbSink, StepCancelled, StepContext, StepFailed
from .models import Attempt, StepEvent, StepRun
from .signals import attempt_finished

log = logging.getLogger(__name__)
Status = StepRun.Status

# One advisory lock key for "a migration step is running on this database" (any run, any worker).
TARGET_LOCK_KEY = 0x4D435031  # "MCP1"


class Heartbeat(threading.Thread):
    """Every second: heartbeat, cancel/pause requests, lock sample, backfill progress."""

    def __init__(self, ctx: StepContext, lock_conn: psycopg.Connection, work_pid: int):
        super().__init__(daemon=True, name=f"heartbeat-{ctx.attempt.pk}")
        self.ctx, self.lock_conn, self.work_pid = ctx, lock_conn, work_pid
        self.stopping = threading.Event()
        self.locks = LockSummary()
        self.rate_window: list[tuple[float, int]] = []
        self.retries_seen = (0, float("-inf"))  # (lock retries, when that count last changed)
        self.logged_wait: tuple[list, float] = ([], float("-inf"))  # (blocker pids, when last logged)

    def run(self):
        try:
            while not self.stopping.wait(self.interval()):
                try:
                    self.beat()
                except Exception:  # one failed beat (control DB hiccup) must not end the heartbeat for good
                    log.exception("heartbeat beat failed; trying again")
                    close_old_connections()
        finally:
            connection.close()

    def interval(self) -> float:
        """Every second; four times a second while the migration fights for a lock, so that the short attempts
        of a retry loop (it sleeps in between, blocked by nobody) are seen and their blocker named."""
        if not self.locks.samples:
            return 0.2
        now = time.monotonic()
        if self.ctx.sink.lock_retries != self.retries_seen[0]:
            self.retries_seen = (self.ctx.sink.lock_retries, now)
        episode = self.locks.episode
        if now - self.retries_seen[1] < 5 or (episode and now - episode["last"] < 5):
            return 0.25
        return settings.STEP_HEARTBEAT_SECONDS

    def wait_is_news(self, sample: dict, final: bool, shown: dict) -> bool:
        """Log the migration's wait when its blockers change, and every 5 s while it lasts (not every beat)."""
        if final or not sample["migration_waits_on"] or "wait_seen_seconds_ago" in shown:
            return False
        pids = sorted(b["pid"] for b in sample["migration_waits_on"])
        now = time.monotonic()
        if pids == self.logged_wait[0] and now - self.logged_wait[1] < 5:
            return False
        self.logged_wait = (pids, now)
        return True

    def beat(self, final: bool = False):
        attempt = self.ctx.attempt
        progress: dict[str, Any] = {"statement": self.ctx.sink.current}
        try:
            sample = sample_locks(self.lock_conn, self.work_pid)
            progress["locks"] = self.locks.add(sample, statement=self.ctx.sink.current)
            progress["lock_retries"] = self.ctx.sink.lock_retries
            progress["last_retry"] = self.ctx.sink.last_retry
            if self.wait_is_news(sample, final, progress["locks"]):
                first = sample["migration_waits_on"][0]
                StepEvent.objects.create(
                    attempt=attempt, kind=StepEvent.Kind.LOCKS,
                    message=f"The migration waits on pid {first['pid']} ({first['application'] or 'no application'}"
                            f", transaction {first['transaction_seconds']:.0f}s, {first['state']}): "
                            f"{first['query'][:120]}",
                    data={"migration_waits_on": sample["migration_waits_on"],
                          "migration_wait_seconds": sample["migration_wait_seconds"]},
                )
            if sample["blocked_by_migration"]:
                StepEvent.objects.create(
                    attempt=attempt, kind=StepEvent.Kind.LOCKS,
                    message=f"{len(sample['blocked_by_migration'])} session(s) waiting on the migration's locks, "
                            f"longest {sample['longest_wait_seconds']:.1f}s",
                    data=sample,
                )
            if self.ctx.step.kind == Kind.BACKFILL:
                progress["backfill"] = self.backfill_progress()
        except psycopg.Error as exc:
            progress["monitor_error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        row = Attempt.objects.filter(pk=attempt.pk).values("cancel_requested").first()
        Attempt.objects.filter(pk=attempt.pk).update(heartbeat_at=timezone.now(), progress=progress)
        if not final and row and row["cancel_requested"]:
            self.ctx.cancel_event.set()
            # Sent on every beat until the step ends: a cancel that lands between two statements hits an idle
            # backend and would otherwise be lost for the whole next statement.
            self.lock_conn.execute("SELECT pg_cancel_backend(%s)", (self.work_pid,))

    def backfill_progress(self) -> dict:
        exists = scalar(self.lock_conn, "SELECT to_regclass('public.migration_progress') IS NOT NULL")
        if not exists:
            return {"tables": []}
        rows = self.lock_conn.execute(
            "SELECT table_name, rows_total, rows_done, status FROM public.migration_progress ORDER BY table_name"
        ).fetchall()
        # A re-run after a rollback may find rows_total unset or lower than what is done: never show more done
        # than the total, nor (below) a negative rate when the progress table was reset.
        tables = [{"table": t, "rows_total": max(total or 0, done or 0), "rows_done": done or 0, "status": st}
                  for t, total, done, st in rows]
        done = sum(t["rows_done"] for t in tables)
        total = sum(t["rows_total"] for t in tables)
        now = time.monotonic()
        self.rate_window = [(t, d) for t, d in self.rate_window if now - t < 15] + [(now, done)]
        first_t, first_done = self.rate_window[0]
        rate = max(0.0, (done - first_done) / (now - first_t)) if now > first_t else 0.0
        eta = (total - done) / rate if rate > 0 else None
        return {"tables": tables, "rows_done": done, "rows_total": total, "rate": round(rate, 1),
                "eta_seconds": round(eta) if eta is not None else None}


def _take_target_lock(lock_conn) -> bool:
    """Try for a few seconds: the previous step's worker may be closing its lock connection right now."""
    deadline = time.monotonic() + settings.STEP_LOCK_WAIT_SECONDS
    while True:
        if lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (TARGET_LOCK_KEY,)).fetchone()[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def _claim(attempt_id: int, worker: str) -> Attempt | None:
    """Fencing: only a queued attempt may start; anything else is a duplicate delivery."""
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().select_related("step__run__target").get(pk=attempt_id)
        if attempt.status != Status.QUEUED:
            log.info("attempt %s is %s: duplicate delivery ignored", attempt_id, attempt.status)
            return None
        if attempt.cancel_requested:
            _finish(attempt, Status.CANCELLED, error={"message": "cancelled before it started"})
            return None
        now = timezone.now()
        attempt.worker, attempt.status, attempt.heartbeat_at = worker, Status.RUNNING, now
        attempt.save(update_fields=["worker", "status", "heartbeat_at"])
        return attempt


def execute(attempt_id: int, worker: str = "") -> str | None:
    close_old_connections()
    attempt = _claim(attempt_id, worker)
    if attempt is None:
        return None
    run = attempt.step.run
    step_def = RUNBOOK.step(attempt.step.key)
    try:
        lock_conn = connect(run.target, application_name=f"controlpanel-lock-run{run.pk}")
    except TargetUnavailable as exc:
        return _finish(attempt, Status.FAILED, error={"message": str(exc)})
    try:
        if not _take_target_lock(lock_conn):
            holder = lock_conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted LIMIT 1",
                (TARGET_LOCK_KEY & 0xFFFFFFFF,),
            ).fetchone()
            return _finish(attempt, Status.FAILED, error={
                "message": f"Another step holds the migration lock on {run.target.name}"
                           f" ({holder[0] if holder else 'unknown session'}); nothing was changed."})
        try:
            work_conn = connect(run.target, application_name=f"controlpanel-{attempt.step.key}-run{run.pk}")
        except TargetUnavailable as exc:
            return _finish(attempt, Status.FAILED, error={"message": str(exc)})
        try:
            return _execute_locked(attempt, run, step_def, lock_conn, work_conn)
        finally:
            work_conn.close()
    finally:
        lock_conn.close()  # releases the advisory lock


def _execute_locked(attempt, run, step_def, lock_conn, work_conn) -> str:
    pid = work_conn.info.backend_pid
    # If this worker dies mid-statement, the server notices the closed socket within a second and rolls back,
    # instead of running a long statement to its end for nobody.
    work_conn.execute("SET client_connection_check_interval = 1000")
    now = timezone.now()
    with transaction.atomic():
        started = Attempt.objects.filter(pk=attempt.pk, status=Status.RUNNING, cancel_requested=False).update(
            started_at=now, heartbeat_at=now, backend_pid=pid)
        if not started:  # cancelled (or reaped) while waiting for the target lock: nothing was done
            return _finish(attempt, Status.CANCELLED, error={"message": "Cancelled before it started."})
        step = StepRun.objects.select_for_update().get(pk=attempt.step_id)
        step.status = Status.RUNNING
        step.started_at = step.started_at or now
        step.save(update_fields=["status", "started_at"])
    attempt.refresh_from_db()
    sink = DbSink(attempt)
    sink.emit("info", f"Attempt {attempt.number} started on {attempt.worker or 'worker'}; "
                      f"target backend pid {pid}; migration lock held.")
    ctx = StepContext(attempt, step_def, run, run.target, work_conn, sink, threading.Event(), attempt.params)
    heartbeat = Heartbeat(ctx, lock_conn, pid)
    heartbeat.start()
    status, result = Status.FAILED, {}
    error: dict[str, Any] | None = None
    try:
        result = EXECUTORS[step_def.kind](ctx) or {}
        status = Status.SUCCEEDED
    except (ScriptCancelled, StepCancelled) as exc:
        if _pause_requested(attempt):
            status, result = _paused(sink)
        else:
            status = Status.CANCELLED
            error = {"message": f"Cancelled: {exc}; the open transaction was rolled back."}
    except (StatementFailed, StepFailed, ScriptError) as exc:
        error = exc.detail
    except BundleChanged as exc:
        error = {"message": str(exc)}
    except TargetUnavailable as exc:
        error = {"message": str(exc)}
    except psycopg.errors.QueryCanceled as exc:
        if ctx.is_cancelled() and _pause_requested(attempt):
            # The pause's cancel landed inside a batch: that batch rolled back, the committed ones are kept.
            status, result = _paused(sink)
        elif ctx.is_cancelled():
            status = Status.CANCELLED
            error = {"message": "Cancelled: the statement was cancelled and its transaction rolled back."}
        else:
            error = {"message": f"Statement timeout: {_first_line(exc)}", "sqlstate": exc.sqlstate}
    except psycopg.OperationalError as exc:
        if work_conn.broken or work_conn.closed:
            error = {"message": f"Connection to the target was lost: {_first_line(exc)} — the open transaction "
                                "was rolled back by the server."}
        else:  # lock timeout, deadlock, …: say which
            error = {"message": _first_line(exc), "sqlstate": exc.sqlstate}
    except Exception as exc:
        log.exception("step executor crashed")
        error = {"message": f"{type(exc).__name__}: {exc}"}
    finally:
        heartbeat.stopping.set()
        heartbeat.join(timeout=10)
    if not ctx.cancel_event.is_set():
        try:
            heartbeat.beat(final=True)  # the page keeps the final progress, not the last sample before the end
        except Exception:
            log.exception("final progress sample failed")
    heartbeat.locks.lock_retries = max(sink.lock_retries, int(result.get("lock_retries") or 0))
    result["locks"] = heartbeat.locks.as_dict()
    if error:
        sink.emit("error", error["message"], **{k: v for k, v in error.items() if k != "message"})
    sink.emit("info", f"Attempt {attempt.number} {status}.")
    return _finish(attempt, status, result=result, error=error)


def _pause_requested(attempt: Attempt) -> bool:
    return Attempt.objects.filter(pk=attempt.pk, pause_requested=True).exists()


def _paused(sink) -> tuple[Status, dict[str, Any]]:
    """A pause is not a failure: no error, no advice; the step waits for Resume."""
    result = {"paused": "Paused: committed batches are kept; Resume continues from migration_progress."}
    sink.emit("info", result["paused"])
    return Status.PAUSED, result


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _finish(attempt: Attempt, status: str, *, result=None, error=None) -> str:
    """Record the outcome. Receivers (evidence snapshots) run before the step shows as ended, while the
    migration lock is still held, so the next step cannot start on a target still being read."""
    now = timezone.now()
    ended = Attempt.objects.filter(pk=attempt.pk, status__in=(Status.QUEUED, Status.RUNNING)).update(
        status=status, finished_at=now, result=result or {}, error=redact_data(error) if error else error)
    if not ended:  # the reaper marked it interrupted meanwhile: keep that verdict, record what happened
        StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.ERROR,
                                 message=f"The worker finished ({status}) after the attempt was marked interrupted.")
        return status
    attempt.refresh_from_db()
    for receiver, response in attempt_finished.send_robust(sender=Attempt, attempt=attempt):
        if isinstance(response, Exception):
            log.error("attempt_finished receiver %s failed: %r", getattr(receiver, "__name__", receiver), response)
    with transaction.atomic():
        latest = Attempt.objects.filter(step_id=attempt.step_id).order_by("-number").values_list("pk", flat=True)
        if latest.first() != attempt.pk:
            return status  # a newer attempt owns the step's status
        step = StepRun.objects.select_for_update().get(pk=attempt.step_id)
        step.status = status
        if RUNBOOK.step(step.key).kind == Kind.CHECKLIST and status == Status.SUCCEEDED:
            step.status = Status.PENDING  # a verification pass; the checklist completes when all are ticked
        step.finished_at = now
        step.save(update_fields=["status", "finished_at"])
        run = step.run
        if RUNBOOK.step(step.key).kind == Kind.CHECKLIST:
            engine.complete_checklist_if_done(run, step.key)
        engine.refresh_run_status(run)
    return status
