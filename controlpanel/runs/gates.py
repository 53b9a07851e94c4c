"""Why a step cannot start now. Each check returns reasons a person can act on (empty: it may start).

Every gate is declared here, in two lists: `PRODUCTION_GATES` guard each step marked `gated` in the runbook
definition (Step 1) on a production target, `STEP_GATES` guard one step whatever its flag. A gate with an
`override` key can be passed by a lead's recorded, audited override (shown on the run page); one without
cannot.
"""

from collections.abc import Callable
from dataclasses import dataclass

from controlpanel.core import roles
from controlpanel.leads.approvals import rollback_gate, step1_gate
from controlpanel.runbook.definition import RUNBOOK, Kind
from controlpanel.safety.gates import preflight_gate, rehearsal_gate

from .bundle import changed_files
from .models import GateOverride, Run, StepRun


def staging_passed(run: Run) -> Run | None:
    """A run on a staging target with the same checksums whose validation step succeeded when it ran
    (a validation marked done by hand is not evidence that staging passed)."""
    return (
        Run.objects.filter(
            environment="staging",
            checksums=run.checksums,
            steps__key=RUNBOOK.validation_step().key,
            steps__status=StepRun.Status.SUCCEEDED,
            steps__signed_off_by__isnull=True,
        )
        .order_by("-created_at")
        .first()
    )


def staging_gate(run: Run) -> list[str]:
    if staging_passed(run) is not None:
        return []
    return ["Production: no staging run with the same bundle checksums has completed Step 2 "
            "(a lead can record an override with a reason)."]


@dataclass(frozen=True)
class Gate:
    name: str
    check: Callable[[Run], list[str]]  # reasons it is closed (empty: open)
    override: str | None = None  # GateOverride.Gate a lead may record; None: no override


PRODUCTION_GATES: tuple[Gate, ...] = (
    Gate("staging passed Step 2", staging_gate, GateOverride.Gate.STAGING),
    Gate("preflight without NO-GO", preflight_gate, GateOverride.Gate.PREFLIGHT),
    Gate("rehearsal passed with its evidence", rehearsal_gate, GateOverride.Gate.REHEARSAL),
    Gate("lead's approval of the checksums", step1_gate),
)
STEP_GATES: dict[str, tuple[Gate, ...]] = {
    "rollback.emergency": (Gate("lead's approval of the rollback", rollback_gate),),
}


def _closed(gates, run: Run) -> list[str]:
    overridden = set(run.overrides.values_list("gate", flat=True))
    reasons = []
    for gate in gates:
        if gate.override is None or gate.override not in overridden:
            reasons += gate.check(run)
    return reasons


def production_gates(run: Run) -> list[str]:
    """A gated step on production needs every PRODUCTION_GATES entry open (or overridden by a lead)."""
    if not run.is_production:  # the run's snapshot of its target's environment, not the live row
        return []
    return _closed(PRODUCTION_GATES, run)


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
    reasons += _closed(STEP_GATES.get(key, ()), run)
    if step_def.file or step_def.kind in (Kind.SQL_FILE, Kind.BACKFILL, Kind.SQL_TESTS):
        changed = changed_files(run)
        if changed:
            reasons.append(
                f"Bundle file(s) changed since this run was created: {', '.join(changed)}. Create a new run."
            )
    return reasons
