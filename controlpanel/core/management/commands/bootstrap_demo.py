"""Idempotent set-up for `make up`: roles, one demo user per role, the demo target built and seeded."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from controlpanel.core import roles
from controlpanel.targets.demo import build_target
from controlpanel.targets.models import Target


class Command(BaseCommand):
    help = "Create roles, demo users and the seeded demo target (safe to run repeatedly)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=int(os.environ.get("DEMO_USERS", 20000)))
        parser.add_argument("--reports", type=int, default=int(os.environ.get("DEMO_REPORTS", 1000000)))

    def handle(self, *args, users, reports, **options):
        with transaction.atomic():
            groups = roles.ensure_roles()
            User = get_user_model()
            for demo in roles.DEMO_USERS:
                user, created = User.objects.get_or_create(username=demo.username)
                if created:
                    user.set_password(demo.password)
                user.is_staff = demo.role == roles.LEAD  # leads configure targets and schedules in the admin
                user.save()
                user.groups.set([groups[demo.role]])
            target, _ = Target.objects.update_or_create(
                name="demo",
                defaults={"environment": Target.Environment.DEMO, "dsn_env_var": settings.DEMO_TARGET_DSN_VAR},
            )
        self.stdout.write("Building the demo target (skipped if it already has data)…")
        done = build_target(os.environ[settings.DEMO_TARGET_DSN_VAR], users=users, reports=reports)
        if done["seeded"]:
            self.stdout.write(f"Seeded demo target: {done['seeded']}")
        else:
            self.stdout.write("Demo target already present: left as it is.")
        from controlpanel.core.schedules import ensure_schedules
        from controlpanel.monitoring.schedules import ensure_monitoring_schedules
        from controlpanel.monitoring.tasks import enqueue_health_checks

        ensure_schedules()
        ensure_monitoring_schedules()
        # A first health check waits in Redis and runs as soon as the worker starts: charts have a point at once.
        try:
            enqueue_health_checks()
        except Exception as exc:  # the broker is checked by `make services`; never fail set-up over it
            self.stderr.write(f"Could not queue the first health check: {type(exc).__name__}")
        self.stdout.write(self.style.SUCCESS("Demo ready."))
