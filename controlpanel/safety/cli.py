"""`manage.py runbook preflight | rehearse | rollback` (declared in runs/management/commands/runbook.py)."""

import json

from django.core.management.base import CommandError

from controlpanel.core import roles
from controlpanel.runs import engine
from controlpanel.runs.driver import DriveStopped, wait_for
from controlpanel.runs.models import Run, StepRun

from .rollback import ROLLBACK_KEY, after_rollback_snapshot, verdict


def _print(command, data: dict, as_json: bool, lines: list[str]) -> None:
    if as_json:
        command.stdout.write(json.dumps(data, indent=2, default=str))
    else:
        for line in lines:
            command.stdout.write(line)


# --- preflight ---------------------------------------------------------------------------------------

def preflight_arguments(parser):
    parser.add_argument("--target", required=True)
    parser.add_argument("--run", type=int, help="attach the report to a run (uses its bundle directory)")
    parser.add_argument("--bundle", help="bundle directory (default: settings.MIGRATION_BUNDLE_DIR)")
    parser.add_argument("--json", action="store_true")


def preflight_handle(command, options) -> int:
    from .preflight import preflight_and_store

    target = command.target(options["target"])
    run = Run.objects.filter(pk=options["run"], target=target).first() if options.get("run") else None
    report = preflight_and_store(target, run=run, directory=options.get("bundle"))
    data = {"report": report.pk, **report.data}
    lines = [f"preflight {report.pk} on {target.name}: {'GO' if report.go else 'NO-GO'}"]
    lines += [f"  [{c['status']:>7}] {c['title']}: {c['evidence']}" for c in report.data["checks"]]
    _print(command, data, options["json"], lines)
    return 0 if report.go else 1


# --- rehearse ----------------------------------------------------------------------------------------

def rehearse_arguments(parser):
    parser.add_argument("--target", required=True)
    parser.add_argument("--bundle", help="bundle directory (default: settings.MIGRATION_BUNDLE_DIR)")
    parser.add_argument("--json", action="store_true")


def rehearse_handle(command, options) -> int:
    from controlpanel.runs.bundle import bundle_dir

    from .models import Rehearsal
    from .rehearsal import rehearse_and_store

    target = command.target(options["target"])
    rehearsal = Rehearsal.objects.create(target=target, bundle_dir=str(bundle_dir(options.get("bundle"))))
    rehearse_and_store(rehearsal)
    data = {"rehearsal": rehearsal.pk, **rehearsal.report, "evidence_passed": rehearsal.evidence_passed}
    failure = rehearsal.report.get("failure") or {}
    lines = [f"rehearsal {rehearsal.pk} on {target.name}: {'PASSED' if rehearsal.passed else 'FAILED'}"]
    if failure:
        lines.append(f"  failed in {failure.get('phase')}: {failure.get('file') or ''} "
                     f"statement {failure.get('statement_index') or '-'}: {failure.get('message')}")
    lines.append(f"  evidence: {'met' if rehearsal.evidence_passed else 'NOT MET'}")
    for item in rehearsal.verdicts:
        if not item["passed"]:
            lines.append(f"    not met {item['stage']}: {item['criterion']}: {item['message']}")
    for phase, seconds in rehearsal.report.get("phases", {}).items():
        lines.append(f"  {phase:<20} {seconds:.2f}s")
    _print(command, data, options["json"], lines)
    return 0 if rehearsal.passed else 1


# --- rollback ----------------------------------------------------------------------------------------

def rollback_arguments(parser):
    parser.add_argument("run", type=int)
    parser.add_argument("--confirm", required=True, help="the target's name, typed exactly")
    parser.add_argument("--as", dest="as_user", required=True, help="the lead who rolls back")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", action="store_true")


def rollback_handle(command, options) -> int:
    run = command.run(options["run"])
    user = command.user(options["as_user"])
    if not user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        raise CommandError(f"{user.username} is not a lead: only a lead may run the emergency rollback.")
    if options["confirm"] != run.target.name:
        raise CommandError(f"--confirm must be the target's name exactly (“{run.target.name}”); nothing was done.")
    try:
        attempt = engine.start_step(run, ROLLBACK_KEY, user, confirm_target=options["confirm"])
    except engine.StepRefused as exc:
        raise CommandError(str(exc)) from None
    step = run.steps.get(key=ROLLBACK_KEY)
    try:
        wait_for(step, options["timeout"])
    except DriveStopped:  # still running: reported below as it stands
        pass
    attempt.refresh_from_db()
    result: dict | None = None
    if step.status == StepRun.Status.SUCCEEDED:
        # The evidence receiver takes this attempt's after-rollback snapshot in the worker, before the step
        # shows as ended: once the step succeeded it is there, or it failed (the step's log says why).
        snapshot = after_rollback_snapshot(run, attempt)
        result = verdict(run, snapshot) if snapshot else {
            "restored": None, "message": "No after-rollback snapshot was taken for this attempt (see the step's "
                                         "live log): nothing to judge."}
    data = {"run": run.pk, "target": run.target.name, "step": ROLLBACK_KEY, "attempt": attempt.number,
            "status": step.status, "error": attempt.error,
            "verdict": result or {"restored": None, "message": "the rollback did not succeed: no verdict"}}
    restored = bool(result and result.get("restored"))
    lines = [f"rollback of run {run.pk} on {run.target.name}: {step.status}",
             f"  verdict: {'RESTORED' if restored else 'NOT RESTORED'}"]
    if attempt.error:
        lines.append(f"  error: {attempt.error.get('message')}")
    if result and result.get("message"):
        lines.append(f"  {result['message']}")
    for line in (result or {}).get("fingerprint_diff", []):
        lines.append(f"  diff: {line}")
    if result and "counts" in result:
        lines.append(f"  counts {'all equal' if result['counts_equal'] else 'DIFFER'}: " + ", ".join(
            f"{table} {b}->{a}" for table, (b, a) in result["counts"].items()))
    _print(command, data, options["json"], lines)
    return 0 if restored else 1


SUBCOMMANDS = {
    "preflight": (preflight_arguments, preflight_handle),
    "rehearse": (rehearse_arguments, rehearse_handle),
    "rollback": (rollback_arguments, rollback_handle),
}
