"""The runbook through the panel on Supabase's privileges against plain psql, and the rehearsal per shape.

    python bench/bench_platform.py [--users 10000] [--reports 1000000] [--shapes platform,strict]
                                   [--rehearsal-users 1000] [--rehearsal-reports 100000] [--skip-rehearsals]

1. Two clones of one seeded zoo template (default platform+strict: the panel connects as the non-superuser
   migration role). On the first, the panel runs the runbook's SQL steps — Step 1's three files and Step 2's
   validation — exactly as an engineer does: a run in a control database of its own, each step dispatched to
   a real Celery worker (`runs.driver.drive`, the code behind `runbook start --wait`), timed by the attempts the
   worker stored (`started_at`, once it holds the target lock, to `finished_at`). On the second, the same files
   by `psql -v ON_ERROR_STOP=1 -f` as the same role. The figure is the ratio panel / psql (goal ≤ 1.1).
2. The rehearsal (`safety.rehearsal.rehearse`, as `runbook rehearse`: copy, forward twice, validation,
   rollback twice, fingerprints) on a clone of each shape, at the smaller rehearsal size.

Redis: REDIS_URL (a database the benchmark may purge). Server: bench/common.py (BENCH_SERVER).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid

import common

CONTROL_DB = f"platform_bench_control_{uuid.uuid4().hex[:6]}"
REHEARSAL_SHAPES = [("baseline",), ("minimal",), ("strict",), ("platform",), ("platform", "strict")]


def start_worker(env: dict) -> subprocess.Popen:
    from controlpanel.celery import app

    name = f"bench-platform-{uuid.uuid4().hex[:6]}"
    log = common.ROOT / "artifacts" / f"{name}.log"
    log.parent.mkdir(exist_ok=True)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "controlpanel", "worker", "-Q", "steps,default",
                               "-c", "2", "-n", f"{name}@%h", "--loglevel", "WARNING", "--without-mingle",
                               "--without-gossip"], cwd=common.ROOT, env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
        if app.control.ping(destination=[f"{name}@{os.uname().nodename}"], timeout=0.5):
            return worker
    raise RuntimeError("the worker did not answer")


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, 15)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)


def sql_steps():
    from controlpanel.runbook.definition import RUNBOOK

    keys = [s.key for s in RUNBOOK.main_steps()]
    last = max(keys.index(s.key) for s in RUNBOOK.main_steps() if getattr(s, "file", None))
    return [s for s in RUNBOOK.main_steps()[: last + 1]], {s.key: s.file for s in RUNBOOK.main_steps()
                                                          if getattr(s, "file", None)}


def attempt_seconds(run, files: dict[str, str]) -> dict[str, float]:
    """Seconds per SQL file of `files` (step key -> file), read from each step's succeeded attempt as the worker
    stored it: started (the target lock held) to finished."""
    from controlpanel.runs.models import Attempt, StepRun

    attempts = {a.step.key: a for a in Attempt.objects.filter(step__run=run, step__key__in=files,
                                                              status=StepRun.Status.SUCCEEDED)
                .select_related("step").order_by("number")}
    return {files[key]: (attempts[key].finished_at - attempts[key].started_at).total_seconds()
            for key in files if key in attempts}


def panel_run(template: str, users: int) -> dict[str, float]:
    """Seconds per SQL step through the panel (the stored attempt's start to its end), on a clone of `template`."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from controlpanel.runs import engine
    from controlpanel.runs.driver import DriveStopped, drive
    from controlpanel.runs.models import Attempt
    from controlpanel.targets import zoo
    from controlpanel.targets.models import Target

    steps, files = sql_steps()
    with common.cloned(template, "bench_platform_panel") as (name, _):
        built = zoo.describe_target(common.dsn(name))
        variable = f"BENCH_PLATFORM_{name.upper()}"
        os.environ[variable] = built.dsn
        # The environment checklist verifies that a service key is configured (presence only).
        os.environ.setdefault("SUPABASE_SERVICE_KEY", "bench-service-key-not-secret")
        call_command("migrate", verbosity=0)
        from controlpanel.celery import app

        app.control.purge()
        worker = start_worker(dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            person = User.objects.create_user("bench-oncall", password=uuid.uuid4().hex)
            from controlpanel.core import roles

            person.groups.add(roles.ensure_roles()[roles.ONCALL])
            target = Target.objects.create(name="bench-platform", environment="staging", dsn_env_var=variable)
            run = engine.create_run(target, person)
            try:
                drive(run.pk, through=steps[-1].key, sign_off_as=person.pk, operator=person, timeout_per_step=7200)
            except DriveStopped as stopped:
                attempt = Attempt.objects.filter(step__run=run).order_by("-id").first()
                raise SystemExit(f"the panel's run stopped: {stopped}: {attempt.error if attempt else ''}") from None
            return attempt_seconds(run, files)
        finally:
            stop_worker(worker)
            os.environ.pop(variable, None)


def psql_run(template: str, files: list[str]) -> dict[str, float]:
    from controlpanel.targets import zoo

    with common.cloned(template, "bench_platform_psql") as (name, _):
        role = zoo.describe_target(common.dsn(name)).connect_role
        return {file: common.psql_file(name, common.bundle_dir() / file, user=role) for file in files}


def rehearsal_per_shape(users: int, reports: int) -> list[tuple[str, dict]]:
    from controlpanel.safety.rehearsal import rehearse
    from controlpanel.targets import zoo
    from controlpanel.targets.models import Target

    results = []
    for shapes in REHEARSAL_SHAPES:
        template = common.target_template(users, reports, migrated=False, shapes=shapes)
        with common.cloned(template, "bench_platform_rehearsal") as (name, _):
            variable = f"BENCH_PLATFORM_R_{name.upper()}"
            os.environ[variable] = zoo.describe_target(common.dsn(name)).dsn
            try:
                report = rehearse(Target(name=f"bench-{'+'.join(shapes)}", environment="staging",
                                         dsn_env_var=variable))
            finally:
                os.environ.pop(variable, None)
        results.append(("+".join(shapes), report))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--shapes", default="platform,strict")
    parser.add_argument("--rehearsal-users", type=int, default=1_000)
    parser.add_argument("--rehearsal-reports", type=int, default=100_000)
    parser.add_argument("--skip-rehearsals", action="store_true")
    args = parser.parse_args()
    shapes = tuple(s for s in args.shapes.split(",") if s)
    failed = False

    with common.control_database(CONTROL_DB):
        template = common.target_template(args.users, args.reports, migrated=False, shapes=shapes)
        panel = panel_run(template, args.users)
        psql = psql_run(template, list(panel))
        width = max(len(f) for f in panel)
        print(f"\n{'file':<{width}}  {'panel s':>9}  {'psql s':>9}  ratio")
        for file in panel:
            print(f"{file:<{width}}  {panel[file]:9.2f}  {psql[file]:9.2f}  {panel[file] / psql[file]:5.2f}")
        total_panel, total_psql = sum(panel.values()), sum(psql.values())
        ratio = total_panel / total_psql
        print(f"{'total':<{width}}  {total_panel:9.2f}  {total_psql:9.2f}  {ratio:5.2f}")
        common.headline("platform", f"runbook SQL steps via the panel / psql -f ({'+'.join(shapes)}, "
                                    f"{args.reports:,} reports)",
                        f"{ratio:.2f}x ({total_panel:.1f} s / {total_psql:.1f} s)", "<= 1.1x", ratio <= 1.1)

        if not args.skip_rehearsals:
            print(f"\nrehearsal per shape ({args.rehearsal_users:,} users / {args.rehearsal_reports:,} reports)")
            for shape, report in rehearsal_per_shape(args.rehearsal_users, args.rehearsal_reports):
                verdict = "PASSED" if report["passed"] else "FAILED"
                phases = ", ".join(f"{k} {v:.1f}" for k, v in report["phases"].items())
                print(f"  {shape:<18} {verdict} in {report.get('seconds', 0):6.1f} s  ({phases})")
                if report["failure"]:
                    print(f"    failure: {report['failure'].get('phase')}: {report['failure'].get('message')}")
                failed |= not report["passed"]
                common.headline("platform", f"rehearsal {shape}",
                                f"{verdict} in {report.get('seconds', 0):.1f} s", "passes", bool(report["passed"]))
    return 1 if failed else 0


if __name__ == "__main__":
    common.setup_django(CONTROL_DB)
    sys.exit(main())
