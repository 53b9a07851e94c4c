"""Why a step cannot start now. Each check returns reasons a person can act on (empty: it may start)."""

from controlpanel.core import roles
from controlpanel.runbook.definition import RUNBOOK, Kind

from .bundle import changed_files
from .models import GateOverride, Run, StepRun


def staging_passed(run: Run) -> Run | None:
    """A run on a staging target with the same checksums whose validation step succeeded when it ran
    (a validation marked done by hand is not evidence that staging passed)."""
    return (
        Run.objects.filter(
            target__environment="staging",
            checksums=run.checksums,
            steps__key="step2.validate",
            steps__status=StepRun.Status.SUCCEEDED,
            steps__signed_off_by__isnull=True,
        )
        .order_by("-created_at")
        .first()
    )


def production_gates(run: Run) -> list[str]:
    """Production Step 1 needs staging evidence (or a lead's override) and passes every registered gate."""
    if not run.target.is_production:
        return []
    reasons = []
    overridden = set(run.overrides.values_list("gate", flat=True))
    if GateOverride.Gate.STAGING not in overridden and staging_passed(run) is None:
        reasons.append(
            "Production: no staging run with the same bundle checksums has completed Step 2 "
            "(a lead can record an override with a reason)."
        )
    for gate in EXTRA_GATES:
        reasons += gate(run, overridden)
    return reasons


# Other feature areas (rehearsal, approvals) append functions (run, overridden_gates) -> [reasons].
EXTRA_GATES: list = []
# Gates for one step whatever its `gated` flag: step key -> [fn(run) -> [reasons]] (e.g. rollback approval).
STEP_GATES: dict[str, list] = {}


def blockers(run: Run, key: str, user) -> list[str]:
    step_def = RUNBOOK.step(key)
    step = run.steps.get(key=key)
    reasons = []
    if not user.has_perm(roles.perm(step_def.acts)):
        reasons.append("Your role may not act on this step.")
    main_flow = RUNBOOK.phase_of(key).main_flow
    # Forward steps need an open run; rollback actions stay available after completion (issues surface later).
    if (main_flow and run.status != Run.Status.OPEN) or run.status == Run.Status.ABANDONED:
        reasons.append(f"The run is {run.get_status_display().lower()}.")
    if step.is_active:
        reasons.append(f"This step is already {step.status}.")
    busy = run.steps.filter(status__in=StepRun.ACTIVE).exclude(pk=step.pk).first()
    if busy:
        reasons.append(f"Step “{busy.definition.title}” is {busy.status}; one step at a time per run.")
    done = set(run.steps.filter(status=StepRun.Status.SUCCEEDED).values_list("key", flat=True))
    for required in step_def.requires:
        if required not in done:
            reasons.append(f"Needs “{RUNBOOK.step(required).title}” to have succeeded first.")
    if step_def.gated:
        reasons += production_gates(run)
    for gate in STEP_GATES.get(key, ()):
        reasons += gate(run)
    if step_def.file or step_def.kind in (Kind.SQL_FILE, Kind.BACKFILL, Kind.SQL_TESTS):
        changed = changed_files(run)
        if changed:
            reasons.append(
                f"Bundle file(s) changed since this run was created: {', '.join(changed)}. Create a new run."
            )
    return reasons
