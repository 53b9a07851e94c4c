"""`manage.py runbook …`: script the runbook (start, status, cancel, steps); report, preflight, rehearse and
rollback come from evidence/ and safety/."""

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from controlpanel.evidence import cli as evidence_cli
from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs import engine
from controlpanel.runs.driver import DriveStopped, drive, steps_through
from controlpanel.runs.models import Run
from controlpanel.runs.reporting import run_status
from controlpanel.safety import cli as safety_cli
from controlpanel.targets.models import Target

# The other areas' subcommands: name -> (add_arguments(parser), handle(command, options) -> exit code).
SUBCOMMANDS = {"report": (evidence_cli.add_arguments, evidence_cli.handle), **safety_cli.SUBCOMMANDS}

class Command(BaseCommand):
    help = "Script the runbook: start, status, cancel, steps (and report, preflight, rehearse, rollback)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="create a run on a target and run it through a step")
        start.add_argument("--target", required=True)
        start.add_argument("--through", help="last step key to run (default: end of post-migration validation)")
        start.add_argument("--sign-off-as", dest="sign_off_as", help="username recorded for manual ticks (not prod)")
        start.add_argument("--as", dest="as_user", help="operator username (default: the sign-off user)")
        start.add_argument("--wait", action="store_true", help="drive the run here and wait for the result")
        start.add_argument("--evidence-timeout", type=float, default=900,
                           help="with --wait: seconds to wait for the evidence collected after Step 5")
        start.add_argument("--json", action="store_true")
        status = sub.add_parser("status", help="a run's status")
        status.add_argument("run", type=int)
        status.add_argument("--json", action="store_true")
        cancel = sub.add_parser("cancel", help="cancel the active step of a run")
        cancel.add_argument("run", type=int)
        cancel.add_argument("--as", dest="as_user")
        sub.add_parser("steps", help="list step keys in order")
        for name, (add_arguments, _) in SUBCOMMANDS.items():
            add_arguments(sub.add_parser(name))

    def handle(self, *args, **options):
        action = options["action"]
        if action in SUBCOMMANDS:
            code = SUBCOMMANDS[action][1](self, options)
            if code:
                sys.exit(code)
            return
        getattr(self, f"do_{action}")(options)

    def target(self, name) -> Target:
        try:
            return Target.objects.get(name=name)
        except Target.DoesNotExist:
            raise CommandError(f"no target {name!r}") from None

    def run(self, pk) -> Run:
        try:
            return Run.objects.select_related("target").get(pk=pk)
        except Run.DoesNotExist:
            raise CommandError(f"no run {pk}") from None

    def user(self, username):
        if not username:
            return None
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {username!r}") from None

    def print_status(self, run, as_json):
        data = run_status(run)
        if as_json:
            self.stdout.write(json.dumps(data, indent=2))
        else:
            self.stdout.write(f"run {data['run']} on {data['target']}: {data['status']}")
            for step in data["steps"]:
                self.stdout.write(f"  {step['key']:<24} {step['status']}")

    def do_steps(self, options):
        for phase in RUNBOOK.phases:
            for step in phase.steps:
                self.stdout.write(f"{step.key}\t{step.kind}\t{step.title}")

    def do_start(self, options):
        target = self.target(options["target"])
        signer = self.user(options["sign_off_as"])
        operator = self.user(options["as_user"]) or signer
        if operator is None:
            raise CommandError("say who acts: --as USER or --sign-off-as USER")
        if signer and target.is_production:
            raise CommandError("--sign-off-as is refused for production targets")
        try:
            steps_through(options["through"])
            run = engine.create_run(target, operator)
        except (DriveStopped, engine.StepRefused) as exc:
            raise CommandError(str(exc)) from None
        through = options["through"]
        if options["wait"]:
            try:
                drive(run.pk, through=through, sign_off_as=signer.pk if signer else None, operator=operator)
            except (DriveStopped, engine.StepRefused) as exc:
                self.stderr.write(f"stopped: {exc}")
        else:
            from controlpanel.runs.tasks import drive_run

            drive_run.delay(run.pk, through, signer.pk if signer else None)
        still_pending = None
        if options["wait"]:
            from controlpanel.evidence.pending import wait_until_collected

            # "completed" is not the end for a script reading the report next: the evidence is collected by the
            # default worker after Step 5. Wait for it, or say what is still pending and exit non-zero.
            still_pending = wait_until_collected(run, timeout=options["evidence_timeout"])
            if still_pending:
                self.stderr.write(f"evidence still pending: {still_pending['state']} since "
                                  f"{still_pending['since']:%Y-%m-%d %H:%M:%S} UTC (is the default worker running?)")
        run.refresh_from_db()
        self.print_status(run, options["json"])
        if options["wait"] and (not _reached(run, through) or still_pending):
            sys.exit(1)

    def do_status(self, options):
        run = self.run(options["run"])
        self.print_status(run, options["json"])
        if run.status != Run.Status.COMPLETED:
            sys.exit(1)

    def do_cancel(self, options):
        run = self.run(options["run"])
        user = self.user(options["as_user"]) or run.created_by
        active = run.steps.filter(status__in=["queued", "running"]).first()
        if active is None:
            raise CommandError("no active step")
        try:
            engine.cancel_step(run, active.key, user)
        except engine.StepRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"cancel requested for {active.key}")


def _reached(run, through) -> bool:
    """The run completed, or every step through `through` succeeded."""
    if through is None:
        return run.status == Run.Status.COMPLETED
    statuses = dict(run.steps.values_list("key", "status"))
    return all(statuses.get(s.key) == "succeeded" for s in steps_through(through))
