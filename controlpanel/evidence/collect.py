"""Gathering evidence from a run's target into the control DB (called by tasks, receivers and the CLI)."""

import logging
import time
from dataclasses import asdict

import psycopg
from django.conf import settings
from django.utils import timezone

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs.models import StepEvent
from controlpanel.targets import tenancy
from controlpanel.targets.connection import TargetUnavailable, connect, target_connection

from .access import AccessMap, access_checkpoint
from .impersonation import error_text
from .models import EvidenceReport, Snapshot
from .probes import run_isolation_probes
from .rls_audit import BLOCKING, audit_rls, blocking, new_findings, policy_coverage
from .snapshots import collect_snapshot
from .timing import OperationTiming, compare_operations, index_usage, measure_sla, typical_operations

log = logging.getLogger(__name__)
APP = "controlpanel-evidence"


def take_snapshot(run, label: str, attempt=None) -> Snapshot:
    with target_connection(run.target, application_name=APP) as conn:
        data = collect_snapshot(conn)
        try:  # the audit's keys, so findings after the migration can be told from those it found
            data["rls_finding_keys"] = sorted({f.key for f in audit_rls(conn)})
        except psycopg.Error as exc:
            data["rls_finding_keys_error"] = error_text(exc)
    return Snapshot.objects.create(run=run, label=label, attempt=attempt, data=data)


def attribute_findings(run, data: dict) -> None:
    """Adds to an RLS audit's data which findings are new since the run's before snapshot (the migration's)."""
    before = Snapshot.objects.filter(run=run, label=Snapshot.Label.BEFORE).order_by("-taken_at", "-id").first()
    keys = (before.data if before else {}).get("rls_finding_keys")
    if keys is None:
        data["attribution"] = {"measured": False, "reason": "no before snapshot with the audit's findings"}
        return
    new = new_findings([{"key": k} for k in keys], data.get("findings", []))
    data["attribution"] = {"measured": True, "new": [f["key"] for f in new],
                           "new_blocking": [f["key"] for f in new if f["severity"] in BLOCKING],
                           "preexisting": len(data.get("findings", [])) - len(new)}


def _rls(conn, run) -> tuple[bool | None, dict]:
    findings = audit_rls(conn)
    return not blocking(findings), {"findings": [f.as_dict() for f in findings], "blocking": len(blocking(findings)),
                                    "coverage": policy_coverage(conn)}


def _probes(conn, run) -> tuple[bool | None, dict]:
    matrix = run_isolation_probes(conn)
    return (None if matrix.setup.get("error") else matrix.passed), matrix.as_dict()


def _sla(conn, run) -> tuple[bool | None, dict]:
    """The SLA as one member, and the typical operations as the same users timed before Step 1 (ratios)."""
    result = measure_sla(conn)
    passed = None if result.get("error") else result["passed"]
    before = before_access_report(run)
    timed = (before.data.get("operations") if before else None) or []
    if timed:
        before_ops = [OperationTiming(**t) for t in timed]
        users = list(dict.fromkeys(t.user_id for t in before_ops))
        result["same_users"] = compare_operations(before_ops, typical_operations(conn, users),
                                                  sla_ms=result.get("sla_ms") or 500.0)
        if passed is not None:
            passed = passed and all(row["passed"] for row in result["same_users"])
    return passed, result


def _indexes(conn, run) -> tuple[bool | None, dict]:
    result = index_usage(conn, tenancy.tenant_tables(conn))
    return result["passed"], result


def take_access_before(run, attempt=None) -> EvidenceReport:
    """The "before" access map (subjects chosen here, once), taken with the data assessment."""
    started = time.monotonic()
    with target_connection(run.target, application_name=APP) as conn:
        access = access_checkpoint(conn, connect=lambda: connect(run.target, application_name=APP)).map
        # The typical operations as sampled users (heaviest first), timed again as the same users after Step 5.
        users = [s.user_id for s in access.subjects if s.user_id][:settings.EVIDENCE_TIMED_USERS]
        operations = [asdict(t) for t in typical_operations(conn, users)] if users and not access.error else []
    unmeasured = [c for c in access.cells if c.error]
    return EvidenceReport.objects.create(
        run=run, kind=EvidenceReport.Kind.ACCESS_BEFORE, passed=not access.error and not unmeasured,
        error=access.error or (f"{len(unmeasured)} cell(s) cannot be measured" if unmeasured else ""),
        data=access.as_dict() | {"operations": operations}, collected_at=timezone.now(),
        seconds=round(time.monotonic() - started, 3))


def before_access_report(run) -> EvidenceReport | None:
    """The latest "before" access map taken before any Step 1 attempt was queued (as for the snapshot)."""
    from django.db.models import Min

    from controlpanel.runs.models import Attempt

    reports = run.evidence_reports.filter(kind=EvidenceReport.Kind.ACCESS_BEFORE)
    step1 = Attempt.objects.filter(step__run=run, step__key__in=RUNBOOK.forward_keys()).aggregate(
        first=Min("queued_at"))["first"]
    if step1 is not None:
        reports = reports.filter(collected_at__lt=step1)
    return reports.order_by("-collected_at", "-id").first()


def _compact(access: AccessMap) -> dict:
    """The "after" map without its keys: the diff names the keys that matter, the map keeps counts and digests."""
    data = access.as_dict()
    for cell in data["cells"]:
        cell.pop("keys"), cell.pop("untied_mask")
    return data


def _access(conn, run) -> tuple[bool | None, dict]:
    before = before_access_report(run)
    if before is None:
        return False, {"error": "cannot measure: no 'before' access map (it is taken when the data assessment "
                                "succeeds, before Step 1)"}
    checkpoint = access_checkpoint(conn, AccessMap.from_dict(before.data),
                                   connect=lambda: connect(run.target, application_name=APP))
    diff = checkpoint.diff
    assert diff is not None  # a checkpoint against a "before" map always has its diff
    return diff.passed, {"diff": diff.as_dict(), "after": _compact(checkpoint.map), "before_report": before.pk,
                         "error": diff.error}


# Order matters: the SLA timing runs before the index usage is read, so its scans are counted.
COLLECTORS = (
    (EvidenceReport.Kind.RLS_AUDIT, _rls),
    (EvidenceReport.Kind.PROBES, _probes),
    (EvidenceReport.Kind.ACCESS, _access),
    (EvidenceReport.Kind.SLA, _sla),
    (EvidenceReport.Kind.INDEXES, _indexes),
)


def collect_evidence(run, kinds=None) -> list[EvidenceReport]:
    """Runs each collector on one target connection; a failing collector is stored with its error."""
    reports = []
    try:
        conn = connect(run.target, application_name=APP)
    except TargetUnavailable as exc:
        return [EvidenceReport.objects.create(run=run, kind=kind, passed=None, error=str(exc))
                for kind, _ in COLLECTORS if kinds is None or kind in kinds]
    try:
        for kind, collector in COLLECTORS:
            if kinds is not None and kind not in kinds:
                continue
            started = time.monotonic()
            try:
                passed, data = collector(conn, run)
                if kind == EvidenceReport.Kind.RLS_AUDIT:
                    attribute_findings(run, data)
                error = data.get("error") or (data.get("setup") or {}).get("error") or ""
            except psycopg.Error as exc:
                log.warning("evidence %s failed on run %s: %s", kind, run.pk, error_text(exc))
                passed, data, error = None, {}, error_text(exc)
            reports.append(EvidenceReport.objects.create(
                run=run, kind=kind, passed=passed, error=error, data=data, collected_at=timezone.now(),
                seconds=round(time.monotonic() - started, 3)))
            if conn.closed:
                break
    finally:
        conn.close()
    return reports


def access_before_now(attempt):
    """The "before" access map, after the snapshot (its probes must not be in the snapshot's figures)."""
    try:
        report = take_access_before(attempt.step.run, attempt)
    except (TargetUnavailable, psycopg.Error) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.ERROR,
                                 message=f"The 'before' access map failed: {message}")
        return None
    subjects = len(report.data.get("subjects", []))
    StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.INFO if report.passed else StepEvent.Kind.ERROR,
                             message=f"Evidence: 'before' access map of {subjects} subjects taken ({report.seconds} s)"
                                     + (f"; {report.error}" if report.error else "."))
    return report


def snapshot_now(attempt, label):
    """Before Step 1 / after a rollback: taken here, before anything else can change the target."""
    run = attempt.step.run
    try:
        snapshot = take_snapshot(run, label, attempt)
    except (TargetUnavailable, psycopg.Error) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.ERROR,
                                 message=f"The '{label}' evidence snapshot failed: {message}")
        log.warning("snapshot %s of run %s failed: %s", label, run.pk, message)
        return None
    StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.INFO,
                             message=f"Evidence: '{label}' snapshot taken ({snapshot.data.get('seconds')} s).")
    return snapshot
