"""How long one full health check takes on a large migrated target.

Uses a cached target template (default 1,000,000 reports, 20,000 users, 1,000 organizations: seeded with
controlpanel.targets.seeding, the forward bundle applied with `psql -v ON_ERROR_STOP=1 -f`, the users spread
over organizations; see bench/common.py), clones it, then times `collect_figures` (everything a scheduled
check does) a few times. The clone is dropped at the end unless --keep.

    .venv/bin/python bench/bench_health.py [--reports 1000000] [--users 20000] [--organizations 1000] [--runs 3]
"""

import argparse
import json
import time

import common

common.setup_django()

import psycopg  # noqa: E402

from controlpanel.monitoring.queries import collect_figures  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--organizations", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    common.add_server_arguments(parser)
    args = common.parse_server_arguments(parser)
    template = common.migrated_target(args.users, args.reports, args.organizations)
    with common.cloned(template, "bench_health", keep=args.keep) as (_name, dsn):
        times = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for run in range(1, args.runs + 1):
                started = time.monotonic()
                figures = collect_figures(conn)
                times.append(time.monotonic() - started)
                print(f"health check {run}: {times[-1] * 1000:.0f} ms "
                      f"(sections: {json.dumps(figures['timings_ms'])})", flush=True)
        latency = figures.get("latency", {})
        median_ms = round(sorted(times)[len(times) // 2] * 1000)
        print(json.dumps({
            "reports": args.reports, "organizations": figures.get("organizations"),
            "active_memberships": figures.get("active_memberships"),
            "database_mb": round(figures["database_bytes"] / 2**20, 1),
            "check_ms": {"first": round(times[0] * 1000), "median": median_ms},
            "tenant_query_ms": {"member": latency.get("member", {}).get("execution_ms"),
                                "service_role": latency.get("service_role", {}).get("execution_ms"),
                                "rows": latency.get("member", {}).get("rows")},
            "errors": figures.get("errors", {}),
        }, indent=2))
        common.headline("health", "full health check (median)", f"{median_ms} ms (first {round(times[0] * 1000)} ms)")
        common.headline("health", "tenant query as a member",
                        f"{latency.get('member', {}).get('execution_ms')} ms "
                        f"(service_role {latency.get('service_role', {}).get('execution_ms')} ms)")
        if figures.get("errors"):
            common.headline("health", "check errors", json.dumps(figures["errors"])[:80], ok=False)


if __name__ == "__main__":
    main()
