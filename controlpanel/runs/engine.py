"""State changes of runs and steps, called by views, the CLI and tasks alike.

The web side only records intent and dispatches; `runner.py` executes in the worker.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlpanel.core import audit, queue, roles
from controlpanel.runbook.definition import RUNBOOK, Kind

from . import bundle, gates
from .errors import StepRefused
from .models import Attempt, ChecklistTick, GateOverride, Run, StepCommand, StepEvent, StepRun

log = logging.getLogger(__name__)

# Sent by name (routed to the steps queue by CELERY_TASK_ROUTES): the tasks module imports this one.
EXECUTE_STEP_TASK = "controlpanel.runs.tasks.execute_step"
Status = StepRun.Status


class QueueUnavailable(StepRefused):
    pass


# --- runs -----------------------------------------------------------------------------------------

def create_run(target, user, *, window_start=None, window_end=None, bundle_dir=None, request=None) -> Run:
    if not user.has_perm(roles.perm(roles.OPERATE_RUNS)):
        raise StepRefused("Your role may not create runs.")
    directory = bundle.bundle_dir(bundle_dir)
    try:
        pinned = bundle.checksums(directory)
    except FileNotFoundError as exc:
        raise StepRefused(str(exc)) from None
    with transaction.atomic():
        # One open run per target: two would interleave steps and evidence on one database. The target row lock
        # makes two simultaneous creations wait for each other instead of both passing the check.
        type(target).objects.select_for_update().get(pk=target.pk)
        open_run = Run.objects.filter(target=target, status=Run.Status.OPEN).order_by("created_at").first()
        if open_run is not None:
            raise StepRefused(
                f"Run #{open_run.pk} is still open on {target.name} (created by {open_run.created_by} "
                f"{open_run.created_at:%Y-%m-%d %H:%M} UTC): continue it, or abandon it from its page first.")
        run = Run.objects.create(
            target=target,
            environment=target.environment,
            created_by=user,
            window_start=window_start,
            window_end=window_end,
            bundle_dir=str(directory),
            checksums=pinned,
        )
        StepRun.objects.bulk_create(StepRun(run=run, key=step.key) for step in RUNBOOK.all_steps())
        audit.record("run.create", user=user, request=request, obj=run, target=target.name,
                     checksums=run.checksum_digest)
    return run


def abandon_run(run: Run, user, reason: str, request=None) -> None:
    """Close an open run that will not be continued (nothing runs on the target); the reason is audited."""
    if not user.has_perm(roles.perm(roles.OPERATE_RUNS)):
        raise StepRefused("Your role may not abandon runs.")
    if not reason.strip():
        raise StepRefused("Say why the run is abandoned.")
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status != Run.Status.OPEN:
            raise StepRefused(f"Run #{run.pk} is {locked.get_status_display().lower()}, not open.")
        if locked.steps.filter(status__in=StepRun.ACTIVE).exists():
            raise StepRefused("A step is queued or running: cancel it first.")
        Run.objects.filter(pk=run.pk).update(status=Run.Status.ABANDONED, finished_at=timezone.now())
        audit.record("run.abandon", user=user, request=request, obj=run, reason=reason)
    run.refresh_from_db()


def refresh_run_status(run: Run) -> None:
    """Completed when every forward step succeeded; rolled back after an emergency rollback."""
    if run.status == Run.Status.ABANDONED:
        return  # closed by a person: nothing a step does reopens it
    statuses = dict(run.steps.values_list("key", "status"))
    if statuses.get("rollback.emergency") == Status.SUCCEEDED:
        new = Run.Status.ROLLED_BACK
    elif all(statuses.get(step.key) == Status.SUCCEEDED for step in RUNBOOK.main_steps()):
        new = Run.Status.COMPLETED
    else:
        new = Run.Status.OPEN
    if new != run.status:
        run.status = new
        run.finished_at = timezone.now() if new != Run.Status.OPEN else None
        run.save(update_fields=["status", "finished_at"])
        if new == Run.Status.COMPLETED:
            from .signals import run_completed

            for receiver, response in run_completed.send_robust(sender=Run, run=run):
                if isinstance(response, Exception):
                    log.error("run_completed receiver %s failed: %r", getattr(receiver, "__name__", receiver),
                              response)


# --- starting steps -------------------------------------------------------------------------------

def start_step(run: Run, key: str, user, *, params=None, confirm_target: str | None = None, request=None,
               resume: bool = False, rerun: bool = False) -> Attempt:
    """Queue one attempt of a step; refuses with the reasons if it may not start now.

    A succeeded step runs again only when asked for explicitly (`rerun`), or for per-table actions whose
    every request names its table: a replayed or forged POST never re-executes finished work."""
    step_def = RUNBOOK.step(key)
    if step_def.changes_target and confirm_target != run.target.name:
        raise StepRefused(f"Type or confirm the target name “{run.target.name}” to run “{step_def.title}”.")
    if step_def.kind == Kind.COMMAND and not StepCommand.objects.command_for(run, step_def):
        raise StepRefused("No command is configured for this step: sign it off manually once done.")
    with transaction.atomic():
        Run.objects.select_for_update().get(pk=run.pk)  # two different steps of one run cannot both start
        step = StepRun.objects.select_for_update().get(run=run, key=key)
        if step.status == Status.SUCCEEDED and not (rerun or step_def.kind == Kind.TABLE_ACTION):
            raise StepRefused(f"“{step_def.title}” already succeeded; running it again must be asked for explicitly.")
        reasons = gates.blockers(run, key, user)
        if reasons:
            raise StepRefused(" ".join(reasons))
        number = (step.attempts.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        attempt = Attempt.objects.create(step=step, number=number, requested_by=user, params=params or {},
                                         status=Status.QUEUED)
        previous_status = step.status
        step.status = Status.QUEUED
        step.finished_at = None
        step.save(update_fields=["status", "finished_at"])
        audit.record("step.resume" if resume else "step.rerun" if rerun else "step.start", user=user,
                     request=request, obj=step, run=run.pk, step=key, attempt=number, params=params or {})
    dispatch(attempt, previous_status)
    return attempt


def dispatch(attempt: Attempt, previous_status: str) -> None:
    """Send the attempt to the step queue; if the broker is down, undo the queued state and say so."""
    result = queue.enqueue_by_name(EXECUTE_STEP_TASK, attempt.pk)
    if result is None:
        message = "The task queue (Redis) is unavailable: the step was not queued. Try again when it is back."
        Attempt.objects.filter(pk=attempt.pk).update(status=Status.FAILED, finished_at=timezone.now(),
                                                     error={"message": message})
        StepRun.objects.filter(pk=attempt.step_id).update(status=previous_status)
        raise QueueUnavailable(message) from None
    Attempt.objects.filter(pk=attempt.pk).update(task_id=result.id)


# --- acting on running or stopped steps ------------------------------------------------------------

def current_attempt(step: StepRun) -> Attempt | None:
    return step.attempts.select_related("requested_by").order_by("-number").first()


def cancel_step(run: Run, key: str, user, request=None) -> None:
    if not user.has_perm(roles.perm(roles.OPERATE_RUNS)):
        raise StepRefused("Your role may not cancel steps.")
    with transaction.atomic():
        step = StepRun.objects.select_for_update().get(run=run, key=key)
        attempt = current_attempt(step)
        if not step.is_active or attempt is None:
            raise StepRefused("Nothing to cancel: the step is not queued or running.")
        # Not picked up yet: cancel it outright (the worker's fencing will find it cancelled and do nothing).
        if Attempt.objects.filter(pk=attempt.pk, status=Status.QUEUED).update(
                status=Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()):
            step.status = Status.CANCELLED
            step.finished_at = timezone.now()
            step.save(update_fields=["status", "finished_at"])
        else:  # running: the heartbeat cancels the statement; the runner records the outcome
            Attempt.objects.filter(pk=attempt.pk).update(cancel_requested=True)
        audit.record("step.cancel", user=user, request=request, obj=step, run=run.pk, attempt=attempt.number)


def pause_step(run: Run, key: str, user, request=None) -> None:
    """Backfill only: stop after the committed batches; resume continues from migration_progress."""
    if RUNBOOK.step(key).kind != Kind.BACKFILL:
        raise StepRefused("Only the data migration step can be paused.")
    if not user.has_perm(roles.perm(roles.OPERATE_RUNS)):
        raise StepRefused("Your role may not pause steps.")
    step = run.steps.get(key=key)
    attempt = current_attempt(step)
    if not step.is_active or attempt is None:
        raise StepRefused("Nothing to pause: the step is not running.")
    Attempt.objects.filter(pk=attempt.pk).update(pause_requested=True, cancel_requested=True)
    audit.record("step.pause", user=user, request=request, obj=step, run=run.pk, attempt=attempt.number)


def mark_done_needs_lead(step_def) -> bool:
    """Declaring a target change (or the backup that protects it) done without the panel's proof is a lead's call."""
    return step_def.changes_target or step_def.kind == Kind.BACKUP


def mark_done(run: Run, key: str, user, reason: str, request=None) -> None:
    """A person declares a stopped step done (e.g. verified by hand after an interruption)."""
    if not reason.strip():
        raise StepRefused("Give a reason for marking the step done.")
    if mark_done_needs_lead(RUNBOOK.step(key)) and not user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        raise StepRefused("Only a lead can mark this step done by hand: it changes the target (or is its backup).")
    with transaction.atomic():
        Run.objects.select_for_update().get(pk=run.pk)
        step = StepRun.objects.select_for_update().get(run=run, key=key)
        if step.is_active:
            raise StepRefused("The step is still active: cancel it first.")
        if step.status not in (Status.INTERRUPTED, Status.FAILED, Status.CANCELLED) or not step.attempts.exists():
            raise StepRefused("Only a step that ran and stopped (interrupted, failed or cancelled) can be marked done.")
        # The same gates as starting it: marking done is never a way around prerequisites or production gates.
        reasons = gates.blockers(run, key, user)
        if reasons:
            raise StepRefused(" ".join(reasons))
        step.status = Status.SUCCEEDED
        step.signed_off_by = user
        step.sign_off_reason = reason
        step.finished_at = timezone.now()
        step.started_at = step.started_at or step.finished_at
        step.save()
        audit.record("step.mark_done", user=user, request=request, obj=step, run=run.pk, reason=reason)
        refresh_run_status(run)


def sign_off(run: Run, key: str, user, note: str = "", request=None) -> None:
    """Manual sign-off of a command step with no configured command (e.g. a Vercel deploy)."""
    step_def = RUNBOOK.step(key)
    if step_def.kind != Kind.COMMAND:
        raise StepRefused("Only deployment steps are signed off.")
    note = (note or "").strip()
    if not note:
        raise StepRefused("Say what was done: a sign-off needs a note.")
    with transaction.atomic():
        Run.objects.select_for_update().get(pk=run.pk)
        step = StepRun.objects.select_for_update().get(run=run, key=key)
        reasons = gates.blockers(run, key, user)
        if reasons:
            raise StepRefused(" ".join(reasons))
        now = timezone.now()
        step.status = Status.SUCCEEDED
        step.signed_off_by = user
        step.sign_off_reason = note
        step.started_at = step.started_at or now
        step.finished_at = now
        step.save()
        audit.record("step.sign_off", user=user, request=request, obj=step, run=run.pk, note=note)
        refresh_run_status(run)


def flag_for_investigation(run: Run, key: str, user, note: str, request=None) -> None:
    if not user.has_perm(roles.perm(roles.OPERATE_RUNS)):
        raise StepRefused("Your role may not flag steps.")
    step = run.steps.get(key=key)
    step.flagged_for_investigation = True
    step.save(update_fields=["flagged_for_investigation"])
    audit.record("step.investigate", user=user, request=request, obj=step, run=run.pk, note=note)


# --- checklists -------------------------------------------------------------------------------------

def tick(run: Run, key: str, item_key: str, user, note: str = "", request=None) -> ChecklistTick:
    step_def = RUNBOOK.step(key)
    item = next((i for i in step_def.items if i.key == item_key), None)
    if item is None:
        raise StepRefused("Unknown checklist item.")
    if item.verifier:
        raise StepRefused("The panel verifies this item itself: use “Verify”.")
    if not user.has_perm(roles.perm(step_def.acts)):
        raise StepRefused("Your role may not tick this checklist.")
    if run.status != Run.Status.OPEN:
        raise StepRefused("The run is closed.")
    with transaction.atomic():
        tick_row, _ = ChecklistTick.objects.update_or_create(
            run=run, step_key=key, item_key=item_key,
            defaults={"ticked_by": user, "ticked_at": timezone.now(), "note": note, "verified": False},
        )
        audit.record("checklist.tick", user=user, request=request, obj=run.steps.get(key=key),
                     item=item_key, note=note)
        complete_checklist_if_done(run, key)
    return tick_row


def checklist_state(run: Run, key: str) -> list[dict]:
    ticks = {t.item_key: t for t in run.ticks.filter(step_key=key).select_related("ticked_by")}
    return [{"item": item, "tick": ticks.get(item.key)} for item in RUNBOOK.step(key).items]


def complete_checklist_if_done(run: Run, key: str) -> bool:
    items = {i.key for i in RUNBOOK.step(key).items}
    ticked = set(run.ticks.filter(step_key=key).values_list("item_key", flat=True))
    if not items <= ticked:
        return False
    step = StepRun.objects.select_for_update().get(run=run, key=key)
    if step.status != Status.SUCCEEDED:
        now = timezone.now()
        step.status = Status.SUCCEEDED
        step.started_at = step.started_at or now
        step.finished_at = now
        step.save(update_fields=["status", "started_at", "finished_at"])
        refresh_run_status(run)
    return True


# --- gates ------------------------------------------------------------------------------------------

def record_override(run: Run, gate: str, user, reason: str, request=None) -> GateOverride:
    if not user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        raise StepRefused("Only a lead can override a gate.")
    if not reason.strip():
        raise StepRefused("An override needs a reason.")
    override, _ = GateOverride.objects.update_or_create(
        run=run, gate=gate, defaults={"lead": user, "reason": reason, "checksums": run.checksums}
    )
    audit.record("gate.override", user=user, request=request, obj=run, gate=gate, reason=reason)
    return override


# --- the worker's side of the state machine ----------------------------------------------------------

def _stop_for_a_person(attempt: Attempt, status: str, now, action: str, message: str, steps) -> None:
    """End an attempt the worker cannot end (died, never took it): its step shows the same state, the live log
    and the audit log say why."""
    attempt.status, attempt.finished_at, attempt.error = status, now, {"message": message}
    attempt.save(update_fields=["status", "finished_at", "error"])
    steps.update(status=status, finished_at=now)
    StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.ERROR, message=message)
    audit.record(action, obj=attempt.step, run=attempt.step.run_id, attempt=attempt.number)


def reap_stale_steps(now=None) -> list[int]:
    """Running attempts whose heartbeat stopped (worker died) become interrupted, queued attempts no worker took
    become failed: either way they wait for a person."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.STEP_STALE_AFTER_SECONDS)
    reaped = []
    with transaction.atomic():
        stale = Attempt.objects.select_for_update(skip_locked=True).filter(
            status=Status.RUNNING, heartbeat_at__lt=cutoff
        )
        for attempt in stale:
            _stop_for_a_person(attempt, Status.INTERRUPTED, now, "step.interrupted",
                               f"Worker {attempt.worker or '?'} stopped sending heartbeats (last at "
                               f"{attempt.heartbeat_at:%H:%M:%S}). Decide: resume, retry, mark done or roll back.",
                               StepRun.objects.filter(pk=attempt.step_id))
            reaped.append(attempt.pk)
        # A queued attempt no worker took (message lost, or no worker serves the step queue) would wait forever:
        # fail it so a person can retry; the runner's fencing never starts an attempt that is no longer queued.
        unclaimed_cutoff = now - timedelta(seconds=settings.STEP_QUEUED_TIMEOUT_SECONDS)
        for attempt in Attempt.objects.select_for_update(skip_locked=True).filter(
                status=Status.QUEUED, queued_at__lt=unclaimed_cutoff).select_related("step"):
            _stop_for_a_person(attempt, Status.FAILED, now, "step.unclaimed",
                               f"No worker took this step within {settings.STEP_QUEUED_TIMEOUT_SECONDS}s (queued at "
                               f"{attempt.queued_at:%H:%M:%S}): its queue message was lost or no worker serves the "
                               "step queue. Check /health/, then retry.",
                               StepRun.objects.filter(pk=attempt.step_id, status=Status.QUEUED))
            reaped.append(attempt.pk)
        # A worker that died after recording its attempt's outcome but before the step's (e.g. during an
        # evidence snapshot) leaves the step shown as active: give it its latest attempt's outcome.
        for step in StepRun.objects.select_for_update(skip_locked=True).filter(status__in=StepRun.ACTIVE):
            latest = step.attempts.order_by("-number").first()
            if latest and latest.status not in StepRun.ACTIVE and latest.finished_at and latest.finished_at < cutoff:
                step.status = latest.status
                step.finished_at = latest.finished_at
                step.save(update_fields=["status", "finished_at"])
                refresh_run_status(step.run)
                reaped.append(latest.pk)
    return reaped
