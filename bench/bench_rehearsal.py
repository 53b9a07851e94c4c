"""Rehearsal time on a demo target with a million reports.

    python bench/bench_rehearsal.py [--reports 1000000] [--users 10000] [--environment demo] [--keep]

Clones a cached seeded, unmigrated target template (baseline + seeding.seed_target; see bench/common.py),
rehearses the project's bundle on a disposable copy of it exactly as `manage.py runbook rehearse` does (full
copy for demo/staging, schema-only for production), prints the time per phase and the verdict, then drops the
clone. Connection: see bench/common.py (BENCH_SERVER; the legacy BENCH_SERVER_DSN still works).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import common

common.setup_django()

from controlpanel.safety.rehearsal import rehearse  # noqa: E402
from controlpanel.targets.models import Target  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--environment", default="demo", choices=["demo", "staging", "production"])
    parser.add_argument("--keep", action="store_true", help="keep the cloned target database")
    args = parser.parse_args()

    template = common.target_template(args.users, args.reports, migrated=False)
    info = common.template_info(template)
    with common.cloned(template, "bench_rehearsal", keep=args.keep) as (name, dsn):
        variable = f"BENCH_REHEARSAL_{name.upper()}"
        os.environ[variable] = dsn
        target = Target(name="bench", environment=args.environment, dsn_env_var=variable)
        try:
            seed_seconds = sum(info.get("phases", {}).values())
            print(f"seeded {args.users} users / {args.reports} reports in {seed_seconds:.1f}s"
                  f"{common.cached_note(info)}: {json.dumps(info.get('seed') or {})}")
            report = rehearse(target)
        finally:
            os.environ.pop(variable, None)
    print(f"rehearsal ({args.environment}, {report.get('copy', {}).get('method')}): "
          f"{'PASSED' if report['passed'] else 'FAILED'} in {report.get('seconds', 0):.1f}s")
    for phase, seconds in report["phases"].items():
        print(f"  {phase:<20} {seconds:8.2f}s")
    for step in report["steps"]:
        print(f"    {step['phase']:<10} {step['file'][:46]:<46} run {step['run']}  {step['seconds']:8.2f}s"
              f"  {'ok' if step['ok'] else 'FAILED'}")
    if report["failure"]:
        print(f"  failure: {json.dumps(report['failure'])}")
    common.headline("rehearsal", f"rehearsal ({args.environment})",
                    f"{'PASSED' if report['passed'] else 'FAILED'} in {report.get('seconds', 0):.1f} s",
                    "passes", bool(report["passed"]))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
