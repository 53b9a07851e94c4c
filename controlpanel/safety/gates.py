"""The production preflight and rehearsal gates and the RLS exposure derived from attempts: small reads of the
control DB (the gates are listed in controlpanel.runs.gates)."""

from datetime import UTC, datetime

from controlpanel.runs.models import Attempt, StepRun

from .models import PreflightReport, Rehearsal

DISABLE, ENABLE = "rollback.rls_disable", "rollback.rls_enable"


def unmet_evidence(rehearsal: Rehearsal) -> list[str]:
    """Blocking criteria of a rehearsal's verdict that are not met (the seam with the rehearsal's report).

    Read from the rehearsal's per-criterion verdicts (`Rehearsal.verdicts` or the report's `verdicts` /
    `criteria`: {"criterion"|"title", "stage"?, "passed"|"met": bool | None, "blocking", "message"|"reason"});
    a blocking criterion that could not be measured (None) is not met. `evidence_passed` False with no verdicts
    is unmet too. A report written before verdicts existed has only `passed`: it counts as its verdict."""
    report = rehearsal.report or {}
    items = getattr(rehearsal, "verdicts", None) or report.get("verdicts") or report.get("criteria")
    if items:
        unmet = []
        for item in items:
            ok = item.get("passed", item.get("met"))
            if item.get("blocking", True) and ok is not True:
                label = item.get("criterion") or item.get("title") or item.get("key")
                stage = f"{item['stage']}: " if item.get("stage") else ""
                unmet.append(f"{stage}{label}: {item.get('message') or item.get('reason') or 'not met'}")
        return unmet
    if getattr(rehearsal, "evidence_passed", report.get("evidence_passed")) is False:
        return ["its evidence did not pass"]
    return []


def passed_rehearsal(run) -> Rehearsal | None:
    """A passed rehearsal of this run's target with exactly the run's pinned checksums, every blocking
    criterion of its evidence met."""
    for rehearsal in (Rehearsal.objects.filter(target=run.target, passed=True, checksums=run.checksums)
                      .order_by("-finished_at")):
        if not unmet_evidence(rehearsal):
            return rehearsal
    return None


def latest_rehearsal(target) -> Rehearsal | None:
    return Rehearsal.objects.filter(target=target).order_by("-created_at").first()


def rehearsal_gate(run) -> list[str]:
    """Production Step 1 needs a rehearsal on the same checksums that passed with its evidence."""
    if passed_rehearsal(run):
        return []
    latest = latest_rehearsal(run.target)
    if latest is None:
        state = "none has been run"
    elif latest.checksums != run.checksums:
        state = f"the latest (#{latest.pk}) rehearsed other bundle checksums"
    elif latest.passed and unmet_evidence(latest):
        state = f"the latest (#{latest.pk}) ran but its evidence fails: " + "; ".join(unmet_evidence(latest)[:3])
    else:
        state = f"the latest (#{latest.pk}) is {latest.get_status_display().lower()}"
    return [f"Production: no passed rehearsal on a copy of {run.target.name} with this run's bundle checksums "
            f"({state}). Rehearse it from the safety page, or a lead records a “rehearsal” override with a reason."]


def preflight_gate(run) -> list[str]:
    """Production Step 1 needs the latest preflight of this target on the run's checksums to have no NO-GO."""
    report = (PreflightReport.objects.filter(target=run.target, checksums=run.checksums)
              .order_by("-created_at", "-id").first())
    if report is not None and report.go:
        return []
    if report is None:
        state = "none has been run on these checksums"
    else:
        no_go = [c["title"] for c in report.data.get("checks", []) if c.get("status") == "no-go"]
        state = f"the latest (#{report.pk}) is NO-GO: " + "; ".join(no_go[:5])
    return [f"Production: no preflight of {run.target.name} without NO-GO for this run's bundle checksums ({state}). "
            "Run the preflight from the safety page, or a lead records a “preflight” override with a reason."]

# A succeeded attempt always has finished_at; were one missing, it would sort last.
_NOT_FINISHED = datetime.max.replace(tzinfo=UTC)


def rls_exposures(target=None) -> list[dict]:
    """Tables whose RLS a succeeded rls_disable turned off with no later succeeded rls_enable (per target)."""
    attempts = (Attempt.objects.filter(step__key__in=(DISABLE, ENABLE), status=StepRun.Status.SUCCEEDED)
                .select_related("step__run__target", "requested_by").order_by("finished_at", "id"))
    if target is not None:
        attempts = attempts.filter(step__run__target=target)
    open_exposures: dict[tuple, Attempt] = {}
    for attempt in attempts:
        table = attempt.params.get("table") or attempt.result.get("table")
        key = (attempt.step.run.target_id, table)
        if attempt.step.key == DISABLE:
            open_exposures.setdefault(key, attempt)  # exposed since the first disable
        else:
            open_exposures.pop(key, None)
    return [
        {"target": a.step.run.target, "table": table, "by": a.requested_by, "since": a.finished_at,
         "run": a.step.run}
        for (_, table), a in sorted(open_exposures.items(), key=lambda item: item[1].finished_at or _NOT_FINISHED)
    ]
