"""How long evidence collection takes on a 1,000,000-report target.

Clones a cached unmigrated target template (baseline + seeding; see bench/common.py), takes the 'before'
snapshot, applies the bundle with psql exactly as the runbook says, spreads users over organizations, then
times each part of the evidence: 'after' snapshot, reconciliation, RLS audit, isolation probes, SLA timing
and index usage. The clone is dropped at the end.

    .venv/bin/python bench/bench_evidence.py [--reports 1000000] [--users 20000] [--organizations 100]
"""

import argparse
import time

import common

common.setup_django()

import psycopg  # noqa: E402

from controlpanel.evidence.probes import run_isolation_probes  # noqa: E402
from controlpanel.evidence.reconcile import reconcile, size_growth  # noqa: E402
from controlpanel.evidence.rls_audit import audit_rls, blocking  # noqa: E402
from controlpanel.evidence.snapshots import collect_snapshot  # noqa: E402
from controlpanel.evidence.timing import index_usage, measure_sla  # noqa: E402
from controlpanel.targets import tenancy  # noqa: E402
from controlpanel.targets.seeding import distribute_into_organizations  # noqa: E402

WIDTH = 28


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--organizations", type=int, default=100)
    args = parser.parse_args()
    results = {}
    template = common.target_template(args.users, args.reports, migrated=False)
    info = common.template_info(template)
    common.report_seconds("build + seed", sum(info.get("phases", {}).values()), results, WIDTH,
                          note=common.cached_note(info))

    def timed(label, fn):
        return common.timed(label, fn, results, WIDTH)

    with common.cloned(template, "cp_bench_evidence") as (name, dsn):
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = timed("snapshot before", lambda: collect_snapshot(conn))
        timed("bundle (psql)", lambda: common.apply_bundle(name))
        with psycopg.connect(dsn, autocommit=True) as conn:
            after = timed("snapshot after", lambda: collect_snapshot(conn))
            growth = size_growth(before, after, 10.0)
            recon = timed("reconcile", lambda: reconcile(before, after))
            timed("distribute organizations", lambda: distribute_into_organizations(conn, args.organizations))
            evidence_started = time.monotonic()
            findings = timed("rls audit", lambda: audit_rls(conn))
            matrix = timed("isolation probes", lambda: run_isolation_probes(conn))
            sla = timed("sla timing", lambda: measure_sla(conn))
            timed("index usage", lambda: index_usage(conn, tenancy.tenant_tables(conn)))
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
    common.headline("evidence", "evidence collection", f"{collection} s (all incl. snapshots: {total} s)")
    passed = bool(recon["passed"]) and not blocking(findings) and bool(matrix.passed)
    common.headline("evidence", "reconcile / RLS / probes",
                    f"reconcile {recon['passed']}, {len(blocking(findings))} blocking, probes {matrix.passed}",
                    "all pass", passed)
    worst = max((op["worst_ms"] for op in sla["operations"] if op["worst_ms"] is not None), default=None)
    common.headline("evidence", "SLA worst operation", f"{worst} ms", "< 500 ms",
                    bool(sla["operations"]) and all(op.get("passed") for op in sla["operations"]))


if __name__ == "__main__":
    main()
