"""Rehearsal time on a demo target with a million reports: the full evidence beside the files only.

    python bench/bench_rehearsal.py [--reports 1000000] [--users 10000] [--environment demo] [--keep]

Clones a cached seeded, unmigrated target template (baseline + seeding.seed_target; see bench/common.py),
rehearses the project's bundle on a disposable copy of it exactly as `manage.py runbook rehearse` does (full
copy for demo/staging, schema-only for production) twice in one run: first the old-style rehearsal (forward
files twice, validation, rollback twice: ``rehearse(with_evidence=False)``), then the rehearsal with the full
evidence (baseline, writer gate and synthetic writer, per-file rewrites and probes, reconciliation, contents,
role model, RLS audit, probes, SLA, Workers, size). Prints both side by side per phase, the verdicts, and the
ratio (goal: under 2×). Connection: see bench/common.py (BENCH_SERVER; the legacy BENCH_SERVER_DSN works).
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
    reports = {}
    with common.cloned(template, "bench_rehearsal", keep=args.keep) as (name, dsn):
        variable = f"BENCH_REHEARSAL_{name.upper()}"
        os.environ[variable] = dsn
        target = Target(name="bench", environment=args.environment, dsn_env_var=variable)
        try:
            seed_seconds = sum(info.get("phases", {}).values())
            print(f"seeded {args.users} users / {args.reports} reports in {seed_seconds:.1f}s"
                  f"{common.cached_note(info)}: {json.dumps(info.get('seed') or {})}")
            reports["files only"] = rehearse(target, with_evidence=False)
            reports["full evidence"] = rehearse(target)
        finally:
            os.environ.pop(variable, None)
    old, full = reports["files only"], reports["full evidence"]
    print(f"rehearsal ({args.environment}, {full.get('copy', {}).get('method')})")
    print(f"  {'phase':<20} {'files only':>12} {'full evidence':>14}")
    for phase in dict.fromkeys([*old["phases"], *full["phases"]]):
        print(f"  {phase:<20} {old['phases'].get(phase, 0):11.2f}s {full['phases'].get(phase, 0):13.2f}s")
    print(f"  {'total':<20} {old.get('seconds', 0):11.2f}s {full.get('seconds', 0):13.2f}s")
    for label, report in reports.items():
        print(f"  {label}: {'PASSED' if report['passed'] else 'FAILED'}")
        for step in report["steps"]:
            print(f"    {step['phase']:<10} {step['file'][:46]:<46} run {step['run']}  {step['seconds']:8.2f}s"
                  f"  {'ok' if step['ok'] else 'FAILED'}")
        if report["failure"]:
            print(f"    failure: {json.dumps(report['failure'])[:400]}")
    print("  verdicts (full evidence):")
    for verdict in full.get("verdicts", []):
        print(f"    {'met    ' if verdict['passed'] else 'NOT MET'} {verdict['stage'][:44]:<44} {verdict['key']:<15}"
              f" {verdict['message'][:150]}")
    ratio = full.get("seconds", 0) / old["seconds"] if old.get("seconds") else None
    common.headline("rehearsal", f"rehearsal, files only ({args.environment})",
                    f"{'PASSED' if old['passed'] else 'FAILED'} in {old.get('seconds', 0):.1f} s", "passes",
                    bool(old["passed"]))
    common.headline("rehearsal", f"rehearsal with the full evidence ({args.environment})",
                    f"{'PASSED' if full['passed'] else 'FAILED'} in {full.get('seconds', 0):.1f} s"
                    f" ({ratio:.2f}x the files only)" if ratio else "", "passes, < 2x", bool(
                        full["passed"] and ratio is not None and ratio < 2))
    return 0 if full["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
