"""Checklist items the panel verifies itself. Each returns (ok, evidence) with a one-line summary."""

import os

from controlpanel.targets.checks import check_target

from . import gates
from .models import StepRun


def target_reachable(ctx):
    check = check_target(ctx.target)
    summary = (f"PostgreSQL {check.server_version}; Supabase shape present" if check.supabase_shape
               else check.error or f"missing: {', '.join(check.missing)}")
    return check.supabase_shape, {"summary": summary, "check": check.as_dict()}


def service_key_present(ctx):
    name = ctx.target.service_key_env_var
    present = bool(name and os.environ.get(name))
    # Only presence is recorded: the value is never read into evidence, logs or pages.
    return present, {"summary": f"{name} is {'set' if present else 'NOT set'} in the worker environment",
                     "variable": name, "present": present}


def backup_taken(ctx):
    step = ctx.run.steps.get(key="pre.backup")
    attempt = step.attempts.filter(status=StepRun.Status.SUCCEEDED).order_by("-number").first()
    if step.status != StepRun.Status.SUCCEEDED or attempt is None:
        return False, {"summary": "run the “Back up the database” step first"}
    return True, {"summary": f"{attempt.result.get('file')} ({attempt.result.get('bytes', 0) / 1e6:.1f} MB) "
                             f"at {attempt.finished_at:%Y-%m-%d %H:%M}", "backup": attempt.result}


def staging_passed_for_run(ctx):
    environment = ctx.run.environment
    if environment == "staging":
        return True, {"summary": "this run is the staging test"}
    if not ctx.run.is_production:
        return True, {"summary": f"not required for a {environment} target"}
    if ctx.run.overrides.filter(gate="staging").exists():
        override = ctx.run.overrides.get(gate="staging")
        return True, {"summary": f"overridden by {override.lead}: {override.reason}"}
    staging = gates.staging_passed(ctx.run)
    if staging is None:
        return False, {"summary": "no staging run with the same checksums has passed Step 2"}
    return True, {"summary": f"run {staging.pk} on {staging.target.name} passed Step 2", "run": staging.pk}


staging_passed = staging_passed_for_run  # the name the runbook definition uses
