"""The runbook's Success Criteria as a per-run scorecard: met / not met / not yet measured, with evidence.

``build_scorecard(run) -> list[dict]`` reads only the control DB (stored attempts, snapshots, evidence
reports, sign-offs); it never touches the target, so pages and the CLI can call it freely.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Min, Q
from django.urls import reverse

from controlpanel.runs.models import Attempt

from . import locks
from .models import EvidenceReport, SignOff, Snapshot
from .reconcile import reconcile, size_growth

MET, NOT_MET, NOT_MEASURED = "met", "not_met", "not_measured"


@dataclass(frozen=True)
class Criterion:
    key: str
    section: str
    text: str  # the runbook's exact line
    manual: bool = False


CRITERIA = (
    Criterion("scripts", "Technical Success", "All migration scripts execute without errors"),
    Criterion("validation", "Technical Success", "All validation tests pass"),
    Criterion("isolation", "Technical Success", "RLS policies properly isolate organization data"),
    # Not the runbook's wording: the promise behind it (issue 11), judged by the access diff.
    Criterion("access", "Technical Success", "No user can reach data they could not reach before"),
    Criterion("workers", "Technical Success", "Workers can access organization context"),
    Criterion("application", "Technical Success", "Application functions normally with organization features",
              manual=True),
    Criterion("sla", "Performance Success", "Query performance maintains SLA (< 500ms for typical operations)"),
    Criterion("size", "Performance Success", "Database size increase is reasonable (< 10% for schema changes)"),
    Criterion("indexes", "Performance Success", "Index usage is optimal for multi-tenant queries"),
    Criterion("locks", "Performance Success", "No blocking locks during migration"),
    Criterion("history", "User Experience Success", "Existing users can access all their historical data"),
    Criterion("features", "User Experience Success", "New organization features work as expected", manual=True),
    Criterion("data_loss", "User Experience Success", "No data loss or corruption"),
    Criterion("compatibility", "User Experience Success", "Backwards compatibility maintained during transition"),
)
CRITERIA_BY_KEY = {c.key: c for c in CRITERIA}


def size_budget_percent() -> float:
    return float(settings.RUNBOOK_SIZE_BUDGET_PERCENT)


def latest_snapshot(run, label) -> Snapshot | None:
    return run.snapshots.filter(label=label).order_by("-taken_at", "-id").first()


def pre_migration_snapshot(run) -> Snapshot | None:
    """The latest "before" snapshot whose data assessment ended before any Step 1 attempt was queued: one
    taken by an assessment re-run after Step 1 started shows the migrated state, not the pre-migration one."""
    snapshots = run.snapshots.filter(label=Snapshot.Label.BEFORE)
    step1 = Attempt.objects.filter(step__run=run, step__key__startswith="step1.").aggregate(
        first=Min("queued_at"))["first"]
    if step1 is not None:
        snapshots = snapshots.filter(Q(attempt__finished_at__lt=step1) | Q(attempt__isnull=True, taken_at__lt=step1))
    return snapshots.order_by("-taken_at", "-id").first()


def latest_report(run, kind) -> EvidenceReport | None:
    return run.evidence_reports.filter(kind=kind).order_by("-collected_at", "-id").first()


def _latest_attempts(run, keys) -> dict:
    out = {}
    for attempt in Attempt.objects.filter(step__run=run, step__key__in=keys).select_related("step").order_by("number"):
        out[attempt.step.key] = attempt
    return out


def _attempts_verdict(run, keys) -> tuple[str, dict]:
    latest = _latest_attempts(run, keys)
    failed_attempts = Attempt.objects.filter(step__run=run, step__key__in=keys, status="failed").count()
    evidence = {"steps": {k: (latest[k].status if k in latest else "not run") for k in keys},
                "failed_attempts": failed_attempts,
                "errors": [latest[k].error.get("message") for k in keys if k in latest and latest[k].error]}
    if any(k in latest and latest[k].status == "failed" for k in keys):
        return NOT_MET, evidence
    if all(k in latest and latest[k].status == "succeeded" for k in keys):
        return MET, evidence
    return NOT_MEASURED, evidence


def validation_categories(run) -> list[dict] | None:
    attempt = _latest_attempts(run, ["step2.validate"]).get("step2.validate")
    if attempt is None:
        return None
    return (attempt.result or {}).get("categories") or (attempt.error or {}).get("categories") or []


def _report_verdict(report) -> str:
    if report is None:
        return NOT_MEASURED
    if report.error and report.passed is None:
        return NOT_MEASURED
    return MET if report.passed else NOT_MET


def _combine(*statuses) -> str:
    if NOT_MET in statuses:
        return NOT_MET
    if NOT_MEASURED in statuses:
        return NOT_MEASURED
    return MET


def _cells(report, predicate) -> list[dict]:
    if report is None:
        return []
    return [c for c in report.data.get("cells", []) if predicate(c)]


def _brief(d: dict) -> dict:
    return {k: d[k] for k in ("subject", "relation", "action", "before", "after", "gained", "lost", "exact",
                              "gained_examples", "lost_examples", "reason")}


def _access_verdict(report, *, losses: bool) -> tuple[str, dict]:
    """The access diff's answer: gains (losses=False) or losses of own rows (losses=True). A diff that could not
    be made, or cells that could not be measured, are not met with the reason; not yet collected is pending."""
    if report is None:
        return NOT_MEASURED, {"access_diff": "not collected yet (after Step 5, against the map taken before Step 1)"}
    diff = report.data.get("diff") or {}
    reason = report.error or diff.get("error") or ""
    if not diff or reason:
        return NOT_MET, {"access_diff": reason or "no diff", "cannot_measure": True}
    kind = "loss" if losses else "exposure"
    found = [d for d in diff.get("differences", []) if d["kind"] == kind]
    unmeasured = [d for d in diff.get("differences", []) if d["kind"] == "cannot_measure"]
    evidence = {"subjects": diff.get("subjects"), "relations": diff.get("relations"), "cells": diff.get("cells"),
                ("losses" if losses else "exposures"): [_brief(d) for d in found[:20]], "count": len(found),
                "cannot_measure": [{k: d[k] for k in ("subject", "relation", "action", "reason")}
                                   for d in unmeasured[:20]]}
    return (NOT_MET if found or unmeasured else MET), evidence


def _evaluate(run, criterion: Criterion, ctx: dict) -> tuple[str, dict]:
    key = criterion.key
    if key == "access":
        return _access_verdict(ctx["access"], losses=False)
    if key == "scripts":
        return _attempts_verdict(run, locks.STEP1_KEYS)
    if key == "validation":
        categories = validation_categories(run)
        if categories is None:
            return NOT_MEASURED, {"categories": []}
        passed = bool(categories) and all(c["status"] == "PASSED" for c in categories)
        return (MET if passed else NOT_MET), {"categories": [{"category": c["category"], "status": c["status"]}
                                                             for c in categories]}
    if key == "isolation":
        audit, probes = ctx["rls_audit"], ctx["probes"]
        evidence = {"rls_audit_blocking": audit.data.get("blocking") if audit else None,
                    "rls_audit_new_blocking": (audit.data.get("attribution") or {}).get("new_blocking") if audit
                    else None,
                    "probe_failures": probes.data.get("failures") if probes else None,
                    "leaks": [c for c in _cells(probes, lambda c: c["status"] in ("leak", "escalation", "error"))][:20]}
        access, evidence["access_diff"] = _access_verdict(ctx["access"], losses=False)
        return _combine(_report_verdict(audit), _report_verdict(probes), access), evidence
    if key == "workers":
        status, evidence = _attempts_verdict(run, ["step3.check", "step5.workers"])
        return status, evidence
    if key == "sla":
        report = ctx["sla"]
        ops = [{k: o.get(k) for k in ("key", "median_ms", "worst_ms", "passed", "error")}
               for o in (report.data.get("operations", []) if report else [])]
        return _report_verdict(report), {"sla_ms": report.data.get("sla_ms") if report else None, "operations": ops}
    if key == "size":
        before, after = ctx["before"], ctx["after"]
        if not before or not after:
            return NOT_MEASURED, {"budget_percent": size_budget_percent()}
        growth = size_growth(before.data, after.data, size_budget_percent())
        return (MET if growth["passed"] else NOT_MET), {
            "budget_percent": growth["budget_percent"], "database": growth["database"], "summary": growth["summary"],
            "beyond_need_percent": growth["beyond_need_percent"], "fixed_cost": growth["fixed_cost"]}
    if key == "indexes":
        report = ctx["indexes"]
        evidence = {"coverage": report.data.get("coverage") if report else None}
        audit = ctx["rls_audit"]
        unindexed = [f for f in (audit.data.get("findings", []) if audit else [])
                     if f["code"] == "policy_column_without_index" and f["object"].endswith(".organization_id")]
        evidence["unindexed_policy_columns"] = unindexed
        status = _report_verdict(report)
        return (NOT_MET if unindexed and status != NOT_MEASURED else status), evidence
    if key == "locks":
        verdict = locks.judge_run_locks(run)
        if verdict is None:
            return NOT_MEASURED, {"threshold_seconds": locks.threshold_seconds()}
        return (MET if verdict["passed"] else NOT_MET), verdict
    if key == "history":
        probes, recon = ctx["probes"], ctx["reconciliation"]
        missing = _cells(probes, lambda c: c["status"] == "missing" and c["subject"] not in ("anon", "service_role"))
        evidence = {"missing": missing[:20]}
        checks = [NOT_MEASURED if probes is None or probes.passed is None else (NOT_MET if missing else MET)]
        access, evidence["access_diff"] = _access_verdict(ctx["access"], losses=True)
        checks.append(access)
        if recon is not None:
            members = next((c for c in recon["checks"] if c["check"] == "every user has an active membership"), None)
            if members is not None:
                evidence["users_without_active_membership"] = members["detail"]
                checks.append(MET if members["passed"] else NOT_MET)
        return _combine(*checks), evidence
    if key == "data_loss":
        recon = ctx["reconciliation"]
        if recon is None:
            return NOT_MEASURED, {}
        return (MET if recon["passed"] else NOT_MET), {"checks": [{"check": c["check"], "passed": c["passed"]}
                                                                  for c in recon["checks"]]}
    if key == "compatibility":
        probes = ctx["probes"]
        legacy = _cells(probes, lambda c: c["action"].startswith("legacy insert"))
        if not legacy:
            return NOT_MEASURED, {}
        ok = all(c["status"] == "ok" for c in legacy)
        return (MET if ok else NOT_MET), {"legacy_writes": legacy}
    raise KeyError(key)


def _manual(run, criterion) -> tuple[str, dict]:
    signoff = SignOff.objects.filter(run=run, criterion=criterion.key).select_related("signed_by").first()
    if signoff is None:
        return NOT_MEASURED, {"sign_off": None}
    return (MET if signoff.met else NOT_MET), {"sign_off": {"by": signoff.signed_by.get_username(),
                                                            "at": signoff.signed_at.isoformat(), "note": signoff.note}}


def evidence_context(run) -> dict:
    before = pre_migration_snapshot(run)
    after = latest_snapshot(run, Snapshot.Label.AFTER)
    return {
        "before": before, "after": after,
        "reconciliation": reconcile(before.data, after.data) if before and after else None,
        **{kind: latest_report(run, kind) for kind in EvidenceReport.Kind.values},
    }


def build_scorecard(run, ctx: dict | None = None) -> list[dict]:
    """One line per Success Criterion of the runbook (see module docstring)."""
    from .pending import pending

    ctx = ctx or evidence_context(run)
    url = reverse("evidence:run", args=[run.pk])
    on_its_way = pending(run)  # queued evidence is "being collected since …", not "not measured"
    lines = []
    for criterion in CRITERIA:
        status, evidence = _manual(run, criterion) if criterion.manual else _evaluate(run, criterion, ctx)
        lines.append({"key": criterion.key, "section": criterion.section, "criterion": criterion.text,
                      "manual": criterion.manual, "status": status,
                      "pending": on_its_way if status == NOT_MEASURED and not criterion.manual else None,
                      "evidence": evidence | {"url": f"{url}#{criterion.key}"}})
    return lines
