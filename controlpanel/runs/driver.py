"""Walks a run through the forward runbook, one step at a time: used by the CLI and the drive_run task."""

import time

from django.contrib.auth import get_user_model

from controlpanel.runbook.definition import RUNBOOK, Kind

from . import engine
from .models import Run, StepCommand, StepRun

Status = StepRun.Status
FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED, Status.PAUSED)


class DriveStopped(Exception):
    pass


def steps_through(through: str | None) -> list:
    steps = RUNBOOK.main_steps()
    if through is None:
        return steps
    keys = [s.key for s in steps]
    if through not in keys:
        raise DriveStopped(f"unknown step {through!r}; `runbook steps` lists them")
    return steps[: keys.index(through) + 1]


def wait_for(step: StepRun, timeout: float, poll: float = 0.5) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step.refresh_from_db()
        if step.status in FINAL or step.status == Status.PENDING:
            return step.status
        time.sleep(poll)
    raise DriveStopped(f"{step.key} still {step.status} after {timeout:.0f}s")


def drive(run_id: int, *, through: str | None = None, sign_off_as: int | None = None, operator=None,
          timeout_per_step: float = 3600) -> str:
    """Run every forward step up to `through`; manual ticks and sign-offs recorded as `sign_off_as`.

    Returns the run's status; stops at the first step that does not succeed.
    """
    run = Run.objects.select_related("target").get(pk=run_id)
    signer = get_user_model().objects.get(pk=sign_off_as) if sign_off_as else None
    operator = operator or signer or run.created_by
    if signer and run.is_production:
        raise DriveStopped("--sign-off-as is refused for production targets: a person ticks and signs off there.")
    for step_def in steps_through(through):
        step = run.steps.get(key=step_def.key)
        if step.status == Status.SUCCEEDED:
            continue
        if step_def.kind == Kind.CHECKLIST:
            if signer:
                for item in step_def.items:
                    if not item.verifier and not run.ticks.filter(step_key=step_def.key, item_key=item.key).exists():
                        engine.tick(run, step_def.key, item.key, signer, note="scripted run (--sign-off-as)")
            if any(item.verifier for item in step_def.items):
                engine.start_step(run, step_def.key, operator, confirm_target=run.target.name)
                wait_for(step, timeout_per_step)
            step.refresh_from_db()
            if step.status != Status.SUCCEEDED:
                raise DriveStopped(f"checklist {step_def.key} is not complete ({step.status})")
            continue
        if step_def.kind == Kind.COMMAND and not StepCommand.objects.command_for(run, step_def):
            if not signer:
                raise DriveStopped(f"{step_def.key} needs a manual sign-off (use --sign-off-as on non-production)")
            engine.sign_off(run, step_def.key, signer, note="scripted run (--sign-off-as)")
            continue
        engine.start_step(run, step_def.key, operator, confirm_target=run.target.name)
        status = wait_for(step, timeout_per_step)
        if status != Status.SUCCEEDED:
            raise DriveStopped(f"{step_def.key} ended {status}")
    run.refresh_from_db()
    return run.status
