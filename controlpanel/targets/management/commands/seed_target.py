"""`manage.py seed_target --target demo --users N --reports M`: fill a baseline target with realistic data."""

import time

from django.core.management.base import BaseCommand, CommandError

from controlpanel.targets.connection import TargetUnavailable, target_connection
from controlpanel.targets.models import Target
from controlpanel.targets.seeding import seed_target


class Command(BaseCommand):
    help = "Seed a target built from migrations_sql/baseline with users, profiles, reports, jobs, automations."

    def add_arguments(self, parser):
        parser.add_argument("--target", required=True)
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--reports", type=int, required=True)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, target, users, reports, seed, **options):
        try:
            row = Target.objects.get(name=target)
        except Target.DoesNotExist:
            raise CommandError(f"no target {target!r}") from None
        if row.is_production:
            raise CommandError("refusing to seed a production target")
        started = time.monotonic()
        try:
            with target_connection(row, application_name="controlpanel-seed") as conn:
                counts = seed_target(conn, users=users, reports=reports, seed=seed)
        except TargetUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"seeded {row.name} in {time.monotonic() - started:.1f}s: {counts}")
