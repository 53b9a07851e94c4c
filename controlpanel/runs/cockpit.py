"""The run cockpit: the run's state in one line, the step to open next, its live locks and whom to call.

Read by the run page, every step page and the polled header; a constant number of queries whatever the run.
"""

import hashlib
from dataclasses import dataclass, field

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.support.models import Contact

from .models import Attempt, Run, StepRun

Status = StepRun.Status
STOPPED = (Status.FAILED, Status.INTERRUPTED, Status.CANCELLED)


@dataclass(frozen=True)
class RunState:
    tone: str  # active | bad | paused | next | done
    line: str  # the run's state in one sentence
    step: StepRun | None = None  # the step the line is about
    attempt: Attempt | None = None  # its latest attempt (live progress and locks when active)
    next_key: str | None = None  # the step "Next step →" opens
    contacts: list = field(default_factory=list)
    contacts_area: str = ""  # whose contacts: the area of the step the line (or the page) is about

    @property
    def next_title(self) -> str:
        return RUNBOOK.step(self.next_key).title if self.next_key else ""


def load(run: Run) -> tuple[dict[str, StepRun], dict[int, Attempt]]:
    """Every step of the run and each step's latest attempt: two queries."""
    steps = {s.key: s for s in run.steps.all()}
    latest = (Attempt.objects.filter(step__run=run).order_by("step_id", "-number").distinct("step_id")
              .defer("result"))
    return steps, {a.step_id: a for a in latest}


def states_for(runs: list[Run]) -> dict[int, RunState]:
    """The one-line state of each run of a list page: two queries for the whole page."""
    steps_by_run: dict[int, dict[str, StepRun]] = {run.pk: {} for run in runs}
    for step in StepRun.objects.filter(run__in=runs):
        steps_by_run[step.run_id][step.key] = step
    latest = (Attempt.objects.filter(step__run__in=runs).order_by("step_id", "-number").distinct("step_id")
              .defer("result", "progress"))
    attempts = {a.step_id: a for a in latest}
    return {run.pk: run_state(run, steps_by_run[run.pk], attempts, contacts=False) for run in runs}


def version(run: Run, steps: dict[str, StepRun], attempts: dict[int, Attempt]) -> str:
    """Changes whenever a step changes state or gets a new attempt: the run page is then reloaded."""
    parts = [run.status] + [f"{s.key}:{s.status}:"
                            f"{attempts[s.pk].number if s.pk in attempts else 0}" for s in steps.values()]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def run_state(run: Run, steps: dict[str, StepRun], attempts: dict[int, Attempt], *, contacts=True,
              page_step: str | None = None) -> RunState:
    """``page_step``: on a step page, whom to call is that step's area (a Workers step page names the Workers
    team even while the run's current step is a database one)."""
    state = _state(run, steps, attempts)
    if contacts:
        key = page_step or (state.step.key if state.step else None)
        area = RUNBOOK.step(key).area if key else None
        people = list(Contact.objects.filter(area=area)) if area else []
        state = RunState(state.tone, state.line, state.step, state.attempt, state.next_key, people, area or "")
    return state


def _state(run, steps, attempts) -> RunState:
    if run.status == Run.Status.ROLLED_BACK:
        return RunState("done", "Rolled back: the emergency rollback succeeded; the target is single-tenant again.",
                        steps.get("rollback.emergency"))
    if run.status == Run.Status.ABANDONED:
        return RunState("done", "Abandoned: nothing more runs in this run.")
    for step in steps.values():
        if step.is_active:
            attempt = attempts.get(step.pk)
            statement = (attempt.progress or {}).get("statement") if attempt else ""
            line = f"Now: {step.definition.title} is {step.status}"
            if attempt:
                line += f" (attempt {attempt.number}"
                line += f", {step.elapsed_seconds:.0f} s" if step.elapsed_seconds is not None else ""
                line += ")"
            if statement:
                line += f" — {statement}"
            return RunState("active", line, step, attempt, step.key)
    if run.status == Run.Status.COMPLETED:
        finished = f" at {run.finished_at:%Y-%m-%d %H:%M} UTC" if run.finished_at else ""
        return RunState("done", f"Completed{finished}: every forward step succeeded.")
    for step_def in RUNBOOK.main_steps():
        step = steps.get(step_def.key)
        if step is None or step.status == Status.SUCCEEDED:
            continue
        attempt = attempts.get(step.pk)
        if step.status in STOPPED:
            error = (attempt.error or {}).get("message", "") if attempt else ""
            return RunState("bad", f"Stopped: {step_def.title} {step.status}" + (f" — {error}" if error else ""),
                            step, attempt, step.key)
        if step.status == Status.PAUSED:
            return RunState("paused", f"Paused: {step_def.title} — Resume continues from the committed batches.",
                            step, attempt, step.key)
        return RunState("next", f"Next: {step_def.title}.", step, attempt, step.key)
    return RunState("done", "Every forward step succeeded.")


def next_after(run_steps: dict[str, StepRun], key: str) -> str | None:
    """The first forward step after `key` that has not succeeded (the step page's "Next step →")."""
    keys = [s.key for s in RUNBOOK.main_steps()]
    if key not in keys:
        return None
    for later in keys[keys.index(key) + 1:]:
        step = run_steps.get(later)
        if step is not None and step.status != Status.SUCCEEDED:
            return later
    return None
