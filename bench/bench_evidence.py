"""How long evidence collection takes on a 1,000,000-report target.

Builds a throw-away target (baseline + seeding), takes the 'before' snapshot, applies the bundle with
psql exactly as the runbook says, spreads users over organizations, then times each part of the
evidence: 'after' snapshot, reconciliation, RLS audit, isolation probes, SLA timing and index usage.
The database is dropped at the end.

    .venv/bin/python bench/bench_evidence.py [--reports 1000000] [--users 20000] [--organizations 100]
"""

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402

from controlpanel.evidence.probes import run_isolation_probes  # noqa: E402
from controlpanel.evidence.reconcile import reconcile, size_growth  # noqa: E402
from controlpanel.evidence.rls_audit import audit_rls, blocking  # noqa: E402
from controlpanel.evidence.snapshots import collect_snapshot  # noqa: E402
from controlpanel.evidence.timing import index_usage, measure_sla  # noqa: E402
from controlpanel.targets import tenancy  # noqa: E402
from controlpanel.targets.demo import build_target, drop_database  # noqa: E402
from controlpanel.targets.seeding import distribute_into_organizations  # noqa: E402

SERVER = os.environ.get("BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/")
FORWARD = ("20250904000001_add_multi_tenant_organizations.sql",
           "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")


def timed(label, fn, results):
    started = time.monotonic()
    value = fn()
    results[label] = round(time.monotonic() - started, 2)
    print(f"{label:<28} {results[label]:>8.2f} s", flush=True)
    return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--organizations", type=int, default=100)
    args = parser.parse_args()
    dsn = f"{SERVER}cp_bench_evidence_{uuid.uuid4().hex[:8]}"
    results = {}
    try:
        timed("build + seed", lambda: build_target(dsn, users=args.users, reports=args.reports), results)
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = timed("snapshot before", lambda: collect_snapshot(conn), results)

        def migrate():
            for name in FORWARD:
                subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f",
                                str(settings.MIGRATION_BUNDLE_DIR / name)], check=True, capture_output=True)

        timed("bundle (psql)", migrate, results)
        with psycopg.connect(dsn, autocommit=True) as conn:
            after = timed("snapshot after", lambda: collect_snapshot(conn), results)
            growth = size_growth(before, after, 10.0)
            recon = timed("reconcile", lambda: reconcile(before, after), results)
            timed("distribute organizations", lambda: distribute_into_organizations(conn, args.organizations), results)
            evidence_started = time.monotonic()
            findings = timed("rls audit", lambda: audit_rls(conn), results)
            matrix = timed("isolation probes", lambda: run_isolation_probes(conn), results)
            sla = timed("sla timing", lambda: measure_sla(conn), results)
            timed("index usage", lambda: index_usage(conn, tenancy.tenant_tables(conn)), results)
            collection = round(time.monotonic() - evidence_started, 2)
        total = round(results["snapshot before"] + results["snapshot after"] + results["reconcile"] + collection, 2)
        print(f"\nevidence collection (audit + probes + SLA + indexes): {collection} s")
        print(f"all evidence incl. both snapshots and reconciliation:  {total} s")
        print(f"reconciliation passed: {recon['passed']}; blocking RLS findings: {len(blocking(findings))}; "
              f"probes passed: {matrix.passed} ({len(matrix.cells)} cells)")
        print(f"database growth: {growth['database']['growth_percent']} % "
              f"({growth['database']['before']} -> {growth['database']['after']} bytes)")
        for op in sla["operations"]:
            print(f"  {op['key']:<20} median {op['median_ms']} ms, worst {op['worst_ms']} ms")
    finally:
        drop_database(dsn)


if __name__ == "__main__":
    main()
