"""Rehearsal time on a demo target with a million reports.

    python bench/bench_rehearsal.py [--reports 1000000] [--users 10000] [--environment demo] [--keep]

Builds a seeded demo target (controlpanel.targets.demo.build_target → seeding.seed_target), rehearses the
project's bundle on a disposable copy of it exactly as `manage.py runbook rehearse` does (full copy for
demo/staging, schema-only for production), prints the time per phase and the verdict, then drops the
target. Connection: 127.0.0.1:5432 as postgres unless BENCH_SERVER_DSN is set (a DSN without dbname).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

import django  # noqa: E402

django.setup()

from psycopg.conninfo import make_conninfo  # noqa: E402

from controlpanel.safety.rehearsal import rehearse  # noqa: E402
from controlpanel.targets.demo import build_target, drop_database  # noqa: E402
from controlpanel.targets.models import Target  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--environment", default="demo", choices=["demo", "staging", "production"])
    parser.add_argument("--keep", action="store_true", help="keep the seeded target database")
    args = parser.parse_args()

    name = f"bench_rehearsal_{uuid.uuid4().hex[:8]}"
    server = os.environ.get("BENCH_SERVER_DSN", "postgresql://postgres@127.0.0.1:5432/")
    dsn = make_conninfo(server, dbname=name)
    variable = f"BENCH_REHEARSAL_{name.upper()}"
    os.environ[variable] = dsn
    target = Target(name="bench", environment=args.environment, dsn_env_var=variable)
    try:
        started = time.monotonic()
        built = build_target(dsn, users=args.users, reports=args.reports)
        seed_seconds = time.monotonic() - started
        print(f"seeded {args.users} users / {args.reports} reports in {seed_seconds:.1f}s: "
              f"{json.dumps({k: v for k, v in (built.get('seeded') or {}).items()})}")
        report = rehearse(target)
        print(f"rehearsal ({args.environment}, {report.get('copy', {}).get('method')}): "
              f"{'PASSED' if report['passed'] else 'FAILED'} in {report.get('seconds', 0):.1f}s")
        for phase, seconds in report["phases"].items():
            print(f"  {phase:<20} {seconds:8.2f}s")
        for step in report["steps"]:
            print(f"    {step['phase']:<10} {step['file'][:46]:<46} run {step['run']}  {step['seconds']:8.2f}s"
                  f"  {'ok' if step['ok'] else 'FAILED'}")
        if report["failure"]:
            print(f"  failure: {json.dumps(report['failure'])}")
        return 0 if report["passed"] else 1
    finally:
        if not args.keep:
            drop_database(dsn)
        os.environ.pop(variable, None)


if __name__ == "__main__":
    sys.exit(main())
