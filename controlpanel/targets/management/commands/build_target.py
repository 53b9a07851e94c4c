"""`manage.py build_target --shape baseline,strict,platform --users N --reports M --name DB`: a zoo target."""

from django.core.management.base import BaseCommand, CommandError

from controlpanel.targets import zoo


class Command(BaseCommand):
    help = "Build a local target database of the given zoo shapes (see README: the target zoo) and print its DSNs."

    def add_arguments(self, parser):
        parser.add_argument("--shape", default="baseline",
                            help=f"comma-separated, composing: {', '.join(zoo.SHAPES)} (default baseline)")
        parser.add_argument("--users", type=int, default=200)
        parser.add_argument("--reports", type=int, default=2000)
        parser.add_argument("--name", required=True, help="database name, or a DSN naming the database")
        parser.add_argument("--uid-variant", default=zoo.DEFAULT_UID_VARIANT, choices=sorted(zoo.UID_VARIANTS))
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--replace", action="store_true", help="drop the database first if it exists")

    def handle(self, *args, shape, users, reports, name, uid_variant, seed, replace, **options):
        try:
            built = zoo.build_target(name, shape, users=users, reports=reports, uid_variant=uid_variant, seed=seed,
                                     replace=replace)
        except zoo.ZooError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"built {built.name} ({'+'.join(built.shapes)}, auth.uid() {built.uid_variant}) "
                          f"in {built.info['build_seconds']:.1f}s: {built.seeded or 'not seeded'}")
        # DSNs as built here: trust authentication, no password to print.
        self.stdout.write(f"panel and bundle DSN: {built.dsn}")
        self.stdout.write(f"superuser DSN:        {built.admin_dsn}")
