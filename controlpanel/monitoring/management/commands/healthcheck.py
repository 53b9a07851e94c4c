"""`manage.py healthcheck --target NAME [--json]` runs a health check now; `--all --queue` enqueues them."""

import json

from django.core.management.base import BaseCommand, CommandError

from controlpanel.monitoring.checks import check_and_store
from controlpanel.targets.models import Target


class Command(BaseCommand):
    help = "Run a health check of a target now (stored like a scheduled one), or queue checks for the worker."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--target", help="target name")
        which.add_argument("--all", action="store_true", help="every target")
        parser.add_argument("--queue", action="store_true",
                            help="enqueue the checks on the default queue for the worker instead of running them here")
        parser.add_argument("--json", action="store_true", help="print the figures and alerts as JSON")

    def handle(self, *args, **options):
        if options["all"]:
            targets = list(Target.objects.all())
        else:
            targets = list(Target.objects.filter(name=options["target"]))
            if not targets:
                raise CommandError(f"no target named {options['target']!r}")
        if options["queue"]:
            from controlpanel.monitoring.tasks import enqueue_health_checks

            try:
                queued = enqueue_health_checks(targets)
            except Exception as exc:
                raise CommandError(f"could not queue health checks: {type(exc).__name__}") from None
            self.stdout.write(f"queued {len(queued)} health check(s)")
            return
        failed = False
        reports = []
        for target in targets:
            check = check_and_store(target)
            failed |= not check.ok
            reports.append({"target": target.name, "check": check.pk, "checked_at": check.checked_at.isoformat(),
                            "ok": check.ok, "seconds": check.seconds, "alerts": check.alerts,
                            "figures": check.figures})
        if options["json"]:
            self.stdout.write(json.dumps(reports[0] if options["target"] else reports, indent=2, default=str))
        else:
            for report in reports:
                state = "ok" if report["ok"] else "ALERT"
                self.stdout.write(f"{report['target']}: {state} in {report['seconds']:.2f} s "
                                  f"(migrated: {report['figures'].get('migrated')})")
                for alert in report["alerts"]:
                    self.stdout.write(f"  [{alert['severity']}] {alert['message']}")
        if failed:
            raise SystemExit(1)
