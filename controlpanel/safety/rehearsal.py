"""Rehearsal: the whole bundle on a disposable copy of a target, then the copy is dropped.

Forward files run twice each (the second run proves idempotency: it must succeed and change nothing),
then the validation file, then the rollback (twice); the schema fingerprint taken before the forward
files must equal the one after the rollback. Files run through `targets.sqlrun.run_script`, the code
the run engine uses. Runs in a Celery task or the CLI, never in a web request.
"""

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.utils import timezone

from controlpanel.evidence.locks import threshold_seconds as lock_threshold_seconds
from controlpanel.evidence.lockwatch import sample_locks
from controlpanel.evidence.scorecard import size_budget_percent
from controlpanel.runbook.definition import RUNBOOK, STEP1
from controlpanel.runbook.validation import judge
from controlpanel.runs.bundle import bundle_dir, checksums
from controlpanel.targets import contents
from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts
from controlpanel.targets.connection import TargetUnavailable, connect, scalar
from controlpanel.targets.manifest import ManifestError, load_manifest
from controlpanel.targets.sqlrun import ListSink, RunOptions, StatementFailed, run_script
from controlpanel.targets.sqlscript import ScriptError, load_script
from controlpanel.targets.tenancy import tenant_tables
from controlpanel.targets.writer import SyntheticWriter, WriterGate

from . import rehearsal_evidence as evidence
from .copies import CopyFailed, DisposableCopy
from .locks import estimate_script
from .preflight import contract_checks, missing_objects
from .verdicts import (
    Verdict,
    evidence_passed,
    first_failure,
    judge_check,
    judge_duration,
    judge_rewrites,
    judge_seeding,
    judge_strong_locks,
    judge_writer_blocks,
    judge_writer_errors,
    judge_writer_waits,
)

VALIDATION_FILE = RUNBOOK.validation_step().bundle_file
ROLLBACK_FILE = RUNBOOK.step("rollback.emergency").file
FORWARD_FILES = [step.bundle_file for step in STEP1.steps]


SAMPLE_SECONDS = 0.02


class LockSampler(threading.Thread):
    """Samples the locks a backend holds (every 20 ms) on its own connection: evidence of what ran."""

    def __init__(self, target, pid: int):
        super().__init__(daemon=True)
        self.conn = connect(target, application_name="controlpanel-rehearsal-locks")
        self.pid, self.stopping, self.samples = pid, threading.Event(), 0
        self.held: dict = {}

    def run(self):
        try:
            while not self.stopping.wait(SAMPLE_SECONDS):
                for lock in sample_locks(self.conn, self.pid)["held"]:
                    if lock["relation"] and lock["granted"]:
                        modes = self.held.setdefault(lock["relation"], {})
                        modes[lock["mode"]] = modes.get(lock["mode"], 0) + 1
                self.samples += 1
        except psycopg.Error:
            pass  # the copy is being dropped or the run ended: the samples so far stand
        finally:
            self.conn.close()

    def finish(self) -> dict:
        self.stopping.set()
        self.join(timeout=5)
        return {"samples": self.samples, "interval_seconds": SAMPLE_SECONDS,
                "held": {relation: sorted(modes) for relation, modes in sorted(self.held.items())},
                "samples_by_mode": {relation: modes for relation, modes in sorted(self.held.items())}}


def _options() -> RunOptions:
    return RunOptions(lock_timeout_ms=settings.STEP_LOCK_TIMEOUT_MS,
                      statement_timeout_ms=settings.STEP_STATEMENT_TIMEOUT_MS,
                      lock_retries=settings.STEP_LOCK_RETRIES, backoff_seconds=0.2)


def run_file(copy_target, script, phase: str, run_number: int = 1, writer_tables: list[str] | None = None) -> dict:
    """Run one file on a fresh connection to the copy; the step entry for the report. With ``writer_tables``,
    a writer gate tests before each statement whether it blocks writers on those tables."""
    entry = {"phase": phase, "file": script.name, "run": run_number, "ok": False}
    sink = ListSink()
    conn = connect(copy_target, application_name=f"controlpanel-rehearsal-{phase}")
    sampler = LockSampler(copy_target, conn.info.backend_pid)
    sampler.start()
    gate = WriterGate(sink, copy_target, conn, writer_tables, script.name) if writer_tables else None
    entry["xid_before"] = contents.current_xid(conn)
    started = time.monotonic()
    try:
        result = run_script(conn, script, gate or sink, _options())
        entry.update(ok=True, statements=result.statements, rows=result.rows, lock_retries=result.lock_retries,
                     transactional=result.transactional)
    except StatementFailed as exc:
        entry["error"] = exc.detail
    finally:
        entry["seconds"] = round(time.monotonic() - started, 3)
        entry["locks_sampled"] = sampler.finish()
        if gate is not None:
            entry["writer_blocks"] = [b.as_dict() for b in gate.finish()]
        conn.close()
    entry["notices"] = [e["message"] for e in sink.events if e["kind"] == "notice"][-200:]
    return entry


def _failure(entry: dict, message: str | None = None) -> dict:
    error = entry.get("error") or {}
    return {"phase": entry["phase"], "file": entry.get("file"), "run": entry.get("run"),
            "message": message or error.get("message", ""),
            "statement_index": error.get("statement_index"), "statement": error.get("statement"),
            "line": error.get("line"), "position": error.get("position"), "sqlstate": error.get("sqlstate")}


def _snapshot(copy_target) -> tuple[dict, dict]:
    with connect(copy_target, application_name="controlpanel-rehearsal-fingerprint") as conn:
        tables = ["auth.users"] + [f"public.{t}" for t in tenant_tables(conn)]
        return schema_fingerprint(conn), table_counts(conn, tables)


SYNTHETIC_USERS, SYNTHETIC_REPORTS = 50, 300


def _seed_synthetic(copy_target) -> dict:
    """A schema-only copy has no rows: invented ones let the backfill, the probes and the access diff mean
    something. A failure is reported (the rehearsal is then not passed), never silently skipped."""
    from controlpanel.targets.seeding import seed_target

    try:
        with connect(copy_target, application_name="controlpanel-rehearsal-seed") as conn:
            seeded = seed_target(conn, users=SYNTHETIC_USERS, reports=SYNTHETIC_REPORTS, seed=7)
            users = scalar(conn, "SELECT count(DISTINCT user_id) FROM public.audit_reports")
        return {"ok": True, "counts": {k: v for k, v in seeded.items() if k != "seconds"}, "users_with_rows": users}
    except (psycopg.Error, RuntimeError, ValueError) as exc:  # another installation's columns or constraints
        return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}


def rehearse(target, directory: Path | str | None = None, *, with_evidence: bool = True) -> dict:
    """The report (see module docstring): "passed" needs every file to run and every blocking verdict met;
    "evidence_passed" is the evidence alone; "failure" names the first failure; "verdicts" lists them all.
    ``with_evidence=False`` runs the files only (forward twice, validation, rollback): the benchmark's reference."""
    directory = bundle_dir(directory)
    report: dict[str, Any] = {"target": target.name, "environment": target.environment, "bundle_dir": str(directory),
              "steps": [], "phases": {}, "passed": False, "evidence_passed": False, "failure": None, "verdicts": []}
    started = time.monotonic()

    def fail(failure: dict) -> dict:
        report["failure"] = report["failure"] or failure
        return report

    try:
        report["checksums"] = checksums(directory)
        scripts = {name: load_script(directory / name) for name in RUNBOOK.bundle_files()}
        manifest = load_manifest(directory)
    except FileNotFoundError as exc:
        return fail({"phase": "bundle", "message": str(exc)})
    except ScriptError as exc:
        return fail({"phase": "parse", **exc.detail})
    except ManifestError as exc:
        return fail({"phase": "bundle", "message": str(exc)})
    report["manifest"] = manifest.source
    report["lock_estimate"] = [entry for name in FORWARD_FILES for entry in estimate_script(scripts[name])]

    copy = DisposableCopy(target, schema_only=target.is_production)
    report["copy"] = {"schema_only": copy.schema_only, "method": copy.method, "database": copy.database}
    verdicts: list[Verdict] = []
    try:
        try:
            report["phases"]["copy"] = round(copy.create(), 3)
            report["copy"]["privileges"] = copy.privileges
        except (CopyFailed, TargetUnavailable, psycopg.Error) as exc:
            return fail({"phase": "copy", "message": str(exc).splitlines()[0] if str(exc) else "copy failed"})
        seeding = None
        if copy.schema_only:
            seeding = report["copy"]["synthetic_rows"] = _seed_synthetic(copy.target)
        verdicts.append(judge_seeding(copy.schema_only, seeding))
        _rehearse_on(copy.target, scripts, report, verdicts, manifest, with_evidence)
    finally:
        drop_started = time.monotonic()
        try:
            copy.drop()
            report["copy"]["dropped"] = True
        except (TargetUnavailable, psycopg.Error) as exc:
            report["copy"]["dropped"] = False
            report["copy"]["drop_error"] = str(exc).splitlines()[0] if str(exc) else "drop failed"
        report["phases"]["drop"] = round(time.monotonic() - drop_started, 3)
        report["seconds"] = round(time.monotonic() - started, 3)
        report["verdicts"] = [v.as_dict() for v in verdicts]
    report["evidence_passed"] = evidence_passed(verdicts)
    bad = first_failure(verdicts)
    if bad is not None:
        fail({"phase": "evidence", "stage": bad.stage, "criterion": bad.criterion,
              "message": f"{bad.criterion} — not met {bad.stage}: {bad.message}"})
    report["passed"] = report["failure"] is None and report["evidence_passed"]
    return report


def _per_file_evidence(copy_target, base, entry: dict, position: int, threshold: float) -> list[Verdict]:
    """After the first run of a forward file: rewrites, writers blocked, strong locks, time; and the
    intermediate state (probes) unless it is the last file (the final evidence judges that one)."""
    stage = f"after {entry['file']}"
    nodes = evidence.relfilenodes(copy_target, base.tables)
    out = [judge_rewrites(stage, base.relfilenodes, nodes)]
    base.relfilenodes = base.relfilenodes | nodes
    out.append(judge_writer_blocks(stage, entry.get("writer_blocks", [])))
    out.append(judge_strong_locks(stage, entry["locks_sampled"]["samples_by_mode"],
                                  entry["locks_sampled"]["interval_seconds"], threshold, base.tables))
    # Rows the file wrote, statements and procedures alike (statement row counts miss what a DO block writes).
    written = evidence.rows_written(copy_target, base.tables, entry["xid_before"])
    entry["rows_written"] = written
    out.append(judge_duration(stage, entry["seconds"], max(entry.get("rows", 0), written),
                              STEP1.steps[position].minutes, base.tenant_rows))
    if position < len(FORWARD_FILES) - 1:
        out.extend(evidence.intermediate(copy_target, stage, base))
    return out


def _rehearse_on(copy_target, scripts: dict, report: dict, verdicts: list, manifest, with_evidence: bool) -> None:
    phases = report["phases"]

    def fail(failure):
        report["failure"] = report["failure"] or failure

    with connect(copy_target, application_name="controlpanel-rehearsal") as conn:
        missing = missing_objects(contract_checks(conn))
    if missing:
        fail({"phase": "contract", "message": "The target does not match the contract: " + "; ".join(missing),
              "missing": missing})
        return

    t = time.monotonic()
    before, counts_before = _snapshot(copy_target)
    phases["fingerprint_before"] = round(time.monotonic() - t, 3)

    t = time.monotonic()
    base = evidence.take_baseline(copy_target) if with_evidence else evidence.Baseline()
    phases["evidence_before"] = round(time.monotonic() - t, 3)
    if base.error:
        verdicts.append(judge_check("baseline", "The evidence baseline was taken before the forward files", False,
                                    f"the baseline could not be taken: {base.error}", stage="before"))
    writer = None
    if with_evidence and base.writer_table:
        writer = SyntheticWriter(copy_target, base.writer_table, base.writer_columns,
                                 lock_timeout_seconds=lock_threshold_seconds())
        if writer.prepare():
            writer.start()
        else:
            verdicts.append(judge_check("writer", "The old app writes during the forward files", False,
                                        writer.setup_error, stage="forward"))
            writer = None
    threshold = lock_threshold_seconds()

    t = time.monotonic()
    evidence_seconds = 0.0
    for position, name in enumerate(FORWARD_FILES):
        if writer:
            writer.stage = name
        first = run_file(copy_target, scripts[name], "forward", 1,
                         writer_tables=(base.tables or None) if with_evidence else None)
        report["steps"].append(first)
        if not first["ok"]:
            fail(_failure(first))
            break
        said = judge(first["notices"], expect_results=False)  # the bundle's own NOTICE reporting a failed check
        if not said.passed:
            first["ok"] = False
            fail(_failure(first, f"{name}: {said.message}"))
            break
        if with_evidence:
            e = time.monotonic()
            if writer:
                writer.paused.set()  # the old app's writes are for the files, not for the probes in between
            try:
                verdicts.extend(_per_file_evidence(copy_target, base, first, position, threshold))
            finally:
                if writer:
                    writer.paused.clear()
            evidence_seconds += time.monotonic() - e
        after_first, _ = _snapshot(copy_target)
        if writer:
            writer.stage = f"{name} (run 2)"
        second = run_file(copy_target, scripts[name], "forward", 2)
        report["steps"].append(second)
        if not second["ok"]:
            fail(_failure(second, f"Not idempotent: the second run of {name} failed: "
                                  f"{second['error'].get('message', '')}"))
            break
        after_second, _ = _snapshot(copy_target)
        changed = diff_fingerprints(after_first, after_second)
        second["changed_schema"] = changed
        if changed:
            second["ok"] = False
            fail(_failure(second, f"Not idempotent: the second run of {name} changed the schema again: "
                                  + "; ".join(changed[:5])))
            break
    phases["forward"] = round(time.monotonic() - t - evidence_seconds, 3)
    phases["evidence_per_file"] = round(evidence_seconds, 3)
    if writer:
        stats = writer.finish()
        report["writer"] = stats.as_dict()
        verdicts.append(judge_writer_waits(stats.as_dict(), threshold))
        verdicts.append(judge_writer_errors(stats.as_dict()))

    if with_evidence and report["failure"] is None and not base.error:
        t = time.monotonic()
        final, collected = evidence.final(copy_target, base, manifest, size_budget_percent(),
                                          float(settings.RUNBOOK_SLA_MS))
        verdicts.extend(final)
        report["evidence"] = collected
        phases["evidence_after"] = round(time.monotonic() - t, 3)
    if with_evidence:
        try:
            evidence.drop_digests(copy_target)
        except psycopg.Error:
            pass  # the copy is dropped anyway

    if report["failure"] is None:
        t = time.monotonic()
        validation = run_file(copy_target, scripts[VALIDATION_FILE], "validation")
        verdict = judge(validation["notices"])
        validation["categories"] = verdict.as_dicts()
        report["steps"].append(validation)
        if not validation["ok"]:
            fail(_failure(validation))
        elif not verdict.passed:
            validation["ok"] = False
            fail(_failure(validation, verdict.message))
        failure: dict = report["failure"] or {}  # set by fail() above when the validation failed
        verdicts.append(judge_check("validation", "All validation tests pass", validation["ok"],
                                    "" if validation["ok"] else failure["message"], stage="validation",
                                    categories=validation["categories"]))
        phases["validation"] = round(time.monotonic() - t, 3)

    # The rollback runs whatever happened before: a failed forward file must be undoable too.
    t = time.monotonic()
    rolled_back = True
    for number in (1, 2):
        entry = run_file(copy_target, scripts[ROLLBACK_FILE], "rollback", number)
        report["steps"].append(entry)
        if not entry["ok"]:
            rolled_back = False
            fail(_failure(entry, None if number == 1 else
                          f"Not idempotent: the second run of {ROLLBACK_FILE} failed: "
                          f"{entry['error'].get('message', '')}"))
            break
    phases["rollback"] = round(time.monotonic() - t, 3)

    if rolled_back:
        t = time.monotonic()
        after, counts_after = _snapshot(copy_target)
        diff = diff_fingerprints(before, after)
        counts = {table: [counts_before.get(table), counts_after.get(table)]
                  for table in sorted(set(counts_before) | set(counts_after))}
        counts_equal = all(b == a for b, a in counts.values())
        report["fingerprint"] = {"restored": not diff, "diff": diff}
        report["counts"] = {"equal": counts_equal, "tables": counts}
        phases["fingerprint_after"] = round(time.monotonic() - t, 3)
        if diff:
            fail({"phase": "rollback", "file": ROLLBACK_FILE,
                  "message": "The rollback did not restore the schema fingerprint: " + "; ".join(diff[:5])})
        elif not counts_equal:
            fail({"phase": "rollback", "file": ROLLBACK_FILE,
                  "message": "Row counts differ after the rollback: "
                             + ", ".join(f"{t} {b}→{a}" for t, (b, a) in counts.items() if b != a)})


def rehearse_and_store(rehearsal) -> None:
    """Run a stored Rehearsal row and save its report and verdict."""
    from .models import Rehearsal

    Rehearsal.objects.filter(pk=rehearsal.pk).update(status=Rehearsal.Status.RUNNING, started_at=timezone.now())
    try:
        report = rehearse(rehearsal.target, rehearsal.bundle_dir)
    except Exception as exc:  # recorded as a failed rehearsal rather than a silent task crash
        report = {"passed": False, "failure": {"phase": "internal", "message": f"{type(exc).__name__}: {exc}"}}
    verdicts = report.get("verdicts") or []
    Rehearsal.objects.filter(pk=rehearsal.pk).update(
        status=Rehearsal.Status.PASSED if report["passed"] else Rehearsal.Status.FAILED,
        passed=report["passed"], report=report, finished_at=timezone.now(), verdicts=verdicts,
        evidence_passed=report.get("evidence_passed") if verdicts else None,
        checksums=report.get("checksums") or rehearsal.checksums,
    )
    rehearsal.refresh_from_db()
