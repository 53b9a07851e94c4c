"""The runbook's Success Criteria as a per-run scorecard: met / not met / not yet measured, with evidence.

``build_scorecard(run) -> list[dict]`` reads only the control DB (stored attempts, snapshots, evidence
reports, sign-offs); it never touches the target, so pages and the CLI can call it freely.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Min, Q
from django.urls import reverse

from controlpanel.runbook.definition import RUNBOOK, Kind
from controlpanel.runs.models import Attempt, Run

from . import locks
from .models import EvidenceReport, SignOff, Snapshot
from .reconcile import reconcile, size_growth

MET, NOT_MET, NOT_MEASURED = "met", "not_met", "not_measured"


def size_budget_percent() -> float:
    return float(settings.RUNBOOK_SIZE_BUDGET_PERCENT)


def latest_snapshot(run, label) -> Snapshot | None:
    return run.snapshots.filter(label=label).order_by("-taken_at", "-id").first()


def pre_migration_snapshot(run) -> Snapshot | None:
    """The latest "before" snapshot whose data assessment ended before any Step 1 attempt was queued: one
    taken by an assessment re-run after Step 1 started shows the migrated state, not the pre-migration one."""
    snapshots = run.snapshots.filter(label=Snapshot.Label.BEFORE)
    step1 = Attempt.objects.filter(step__run=run, step__key__in=RUNBOOK.forward_keys()).aggregate(
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
    key = RUNBOOK.validation_step().key
    attempt = _latest_attempts(run, [key]).get(key)
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


# --- one judge per criterion: (run, evidence context) -> (status, evidence) -------------------------------

def _judge_scripts(run, ctx: dict) -> tuple[str, dict]:
    return _attempts_verdict(run, RUNBOOK.forward_keys())


def _judge_validation(run, ctx: dict) -> tuple[str, dict]:
    categories = validation_categories(run)
    if categories is None:
        return NOT_MEASURED, {"categories": []}
    passed = bool(categories) and all(c["status"] == "PASSED" for c in categories)
    return (MET if passed else NOT_MET), {"categories": [{"category": c["category"], "status": c["status"]}
                                                         for c in categories]}


def _judge_isolation(run, ctx: dict) -> tuple[str, dict]:
    audit, probes = ctx["rls_audit"], ctx["probes"]
    evidence = {"rls_audit_blocking": audit.data.get("blocking") if audit else None,
                "rls_audit_new_blocking": (audit.data.get("attribution") or {}).get("new_blocking") if audit
                else None,
                "probe_failures": probes.data.get("failures") if probes else None,
                "leaks": _cells(probes, lambda c: c["status"] in ("leak", "escalation", "error"))[:20]}
    access, evidence["access_diff"] = _access_verdict(ctx["access"], losses=False)
    return _combine(_report_verdict(audit), _report_verdict(probes), access), evidence


def _judge_access(run, ctx: dict) -> tuple[str, dict]:
    return _access_verdict(ctx["access"], losses=False)


def _judge_workers(run, ctx: dict) -> tuple[str, dict]:
    return _attempts_verdict(run, [step.key for step in RUNBOOK.of_kind(Kind.WORKERS_CHECK)])


def _judge_sla(run, ctx: dict) -> tuple[str, dict]:
    report = ctx["sla"]
    ops = [{k: o.get(k) for k in ("key", "median_ms", "worst_ms", "passed", "error")}
           for o in (report.data.get("operations", []) if report else [])]
    same_users = [{k: r.get(k) for k in ("key", "users", "median_ratio", "worst_ratio", "worst_after_ms", "passed")}
                  for r in (report.data.get("same_users", []) if report else [])]
    return _report_verdict(report), {"sla_ms": report.data.get("sla_ms") if report else None, "operations": ops,
                                     "same_users_after_over_before": same_users}


def _judge_size(run, ctx: dict) -> tuple[str, dict]:
    before, after = ctx["before"], ctx["after"]
    if not before or not after:
        return NOT_MEASURED, {"budget_percent": size_budget_percent()}
    growth = size_growth(before.data, after.data, size_budget_percent())
    return (MET if growth["passed"] else NOT_MET), {
        "budget_percent": growth["budget_percent"], "database": growth["database"], "summary": growth["summary"],
        "beyond_need_percent": growth["beyond_need_percent"], "fixed_cost": growth["fixed_cost"]}


def _judge_indexes(run, ctx: dict) -> tuple[str, dict]:
    report, audit = ctx["indexes"], ctx["rls_audit"]
    unindexed = [f for f in (audit.data.get("findings", []) if audit else [])
                 if f["code"] == "policy_column_without_index" and f["object"].endswith(".organization_id")]
    evidence = {"coverage": report.data.get("coverage") if report else None, "unindexed_policy_columns": unindexed}
    status = _report_verdict(report)
    return (NOT_MET if unindexed and status != NOT_MEASURED else status), evidence


def _judge_locks(run, ctx: dict) -> tuple[str, dict]:
    verdict = locks.judge_run_locks(run)
    if verdict is None:
        return NOT_MEASURED, {"threshold_seconds": locks.threshold_seconds()}
    return (MET if verdict["passed"] else NOT_MET), verdict


def _judge_history(run, ctx: dict) -> tuple[str, dict]:
    probes, recon = ctx["probes"], ctx["reconciliation"]
    missing = _cells(probes, lambda c: c["status"] == "missing" and c["subject"] not in ("anon", "service_role"))
    evidence: dict = {"missing": missing[:20]}
    checks = [NOT_MEASURED if probes is None or probes.passed is None else (NOT_MET if missing else MET)]
    access, evidence["access_diff"] = _access_verdict(ctx["access"], losses=True)
    checks.append(access)
    if recon is not None:
        members = next((c for c in recon["checks"] if c["check"] == "every user has an active membership"), None)
        if members is not None:
            evidence["users_without_active_membership"] = members["detail"]
            checks.append(MET if members["passed"] else NOT_MET)
    return _combine(*checks), evidence


def _judge_data_loss(run, ctx: dict) -> tuple[str, dict]:
    recon = ctx["reconciliation"]
    if recon is None:
        return NOT_MEASURED, {}
    return (MET if recon["passed"] else NOT_MET), {"checks": [{"check": c["check"], "passed": c["passed"]}
                                                              for c in recon["checks"]]}


def _judge_compatibility(run, ctx: dict) -> tuple[str, dict]:
    legacy = _cells(ctx["probes"], lambda c: c["action"].startswith("legacy insert"))
    if not legacy:
        return NOT_MEASURED, {}
    ok = all(c["status"] == "ok" for c in legacy)
    return (MET if ok else NOT_MET), {"legacy_writes": legacy}


Judge = Callable[[Run, dict], tuple[str, dict]]


@dataclass(frozen=True)
class Criterion:
    key: str
    section: str
    text: str  # the runbook's exact line
    judge: Judge | None  # None: a person signs it off (SignOff)

    @property
    def manual(self) -> bool:
        return self.judge is None


CRITERIA = (
    Criterion("scripts", "Technical Success", "All migration scripts execute without errors", _judge_scripts),
    Criterion("validation", "Technical Success", "All validation tests pass", _judge_validation),
    Criterion("isolation", "Technical Success", "RLS policies properly isolate organization data", _judge_isolation),
    # Not the runbook's wording: the promise behind it (issue 11), judged by the access diff.
    Criterion("access", "Technical Success", "No user can reach data they could not reach before", _judge_access),
    Criterion("workers", "Technical Success", "Workers can access organization context", _judge_workers),
    Criterion("application", "Technical Success", "Application functions normally with organization features",
              None),
    Criterion("sla", "Performance Success", "Query performance maintains SLA (< 500ms for typical operations)",
              _judge_sla),
    Criterion("size", "Performance Success", "Database size increase is reasonable (< 10% for schema changes)",
              _judge_size),
    Criterion("indexes", "Performance Success", "Index usage is optimal for multi-tenant queries", _judge_indexes),
    Criterion("locks", "Performance Success", "No blocking locks during migration", _judge_locks),
    Criterion("history", "User Experience Success", "Existing users can access all their historical data",
              _judge_history),
    Criterion("features", "User Experience Success", "New organization features work as expected", None),
    Criterion("data_loss", "User Experience Success", "No data loss or corruption", _judge_data_loss),
    Criterion("compatibility", "User Experience Success", "Backwards compatibility maintained during transition",
              _judge_compatibility),
)
CRITERIA_BY_KEY = {c.key: c for c in CRITERIA}


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
        status, evidence = criterion.judge(run, ctx) if criterion.judge else _manual(run, criterion)
        lines.append({"key": criterion.key, "section": criterion.section, "criterion": criterion.text,
                      "manual": criterion.manual, "status": status,
                      "pending": on_its_way if status == NOT_MEASURED and not criterion.manual else None,
                      "evidence": evidence | {"url": f"{url}#{criterion.key}"}})
    return lines
