"""The production rehearsal gate and the RLS exposure derived from attempts: small reads of the control DB."""

from controlpanel.runs.models import Attempt, GateOverride, StepRun

from .models import Rehearsal

DISABLE, ENABLE = "rollback.rls_disable", "rollback.rls_enable"


def passed_rehearsal(run) -> Rehearsal | None:
    """A passed rehearsal of this run's target with exactly the run's pinned checksums."""
    return (Rehearsal.objects.filter(target=run.target, passed=True, checksums=run.checksums)
            .order_by("-finished_at").first())


def latest_rehearsal(target) -> Rehearsal | None:
    return Rehearsal.objects.filter(target=target).order_by("-created_at").first()


def rehearsal_gate(run, overridden) -> list[str]:
    """EXTRA_GATES entry: production Step 1 needs a passed rehearsal on the same checksums (or an override)."""
    if not run.target.is_production or GateOverride.Gate.REHEARSAL in overridden:
        return []
    if passed_rehearsal(run):
        return []
    latest = latest_rehearsal(run.target)
    if latest is None:
        state = "none has been run"
    elif latest.checksums != run.checksums:
        state = f"the latest (#{latest.pk}) rehearsed other bundle checksums"
    else:
        state = f"the latest (#{latest.pk}) is {latest.get_status_display().lower()}"
    return [f"Production: no passed rehearsal on a copy of {run.target.name} with this run's bundle checksums "
            f"({state}). Rehearse it from the safety page, or a lead records a “rehearsal” override with a reason."]


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
        for (_, table), a in sorted(open_exposures.items(), key=lambda item: item[1].finished_at)
    ]
