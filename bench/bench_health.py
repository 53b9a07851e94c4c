"""How long one full health check takes on a large migrated target.

Builds a throwaway target (default 1,000,000 reports, 20,000 users, 1,000 organizations) with
controlpanel.targets.seeding, applies the forward bundle with `psql -v ON_ERROR_STOP=1 -f`, spreads the users
over organizations, then times `collect_figures` (everything a scheduled check does) a few times.
The database is dropped at the end unless --keep.

    .venv/bin/python bench/bench_health.py [--reports 1000000] [--users 20000] [--organizations 1000] [--runs 3]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from controlpanel.monitoring.queries import collect_figures  # noqa: E402
from controlpanel.targets.demo import build_target, drop_database  # noqa: E402
from controlpanel.targets.seeding import distribute_into_organizations  # noqa: E402

FORWARD = ("20250904000001_add_multi_tenant_organizations.sql", "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")


def timed(label, fn):
    started = time.monotonic()
    result = fn()
    print(f"{label}: {time.monotonic() - started:.1f} s", flush=True)
    return result


def apply_bundle(dsn: str) -> None:
    env = {**os.environ, "PGDATABASE": psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]}
    for name in FORWARD:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(ROOT / "migrations_sql" / name)],
                       check=True, env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--organizations", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    dsn = make_conninfo(args.server, dbname=f"bench_health_{uuid.uuid4().hex[:8]}")
    os.environ.setdefault("PGHOST", psycopg.conninfo.conninfo_to_dict(dsn).get("host", "127.0.0.1"))
    os.environ.setdefault("PGUSER", psycopg.conninfo.conninfo_to_dict(dsn).get("user", "postgres"))
    try:
        timed(f"seed {args.users:,} users / {args.reports:,} reports",
              lambda: build_target(dsn, users=args.users, reports=args.reports))
        timed("apply the bundle with psql", lambda: apply_bundle(dsn))
        timed(f"spread over {args.organizations:,} organizations",
              lambda: distribute_into_organizations(dsn, args.organizations))
        times = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for run in range(1, args.runs + 1):
                started = time.monotonic()
                figures = collect_figures(conn)
                times.append(time.monotonic() - started)
                print(f"health check {run}: {times[-1] * 1000:.0f} ms "
                      f"(sections: {json.dumps(figures['timings_ms'])})", flush=True)
        latency = figures.get("latency", {})
        print(json.dumps({
            "reports": args.reports, "organizations": figures.get("organizations"),
            "active_memberships": figures.get("active_memberships"),
            "database_mb": round(figures["database_bytes"] / 2**20, 1),
            "check_ms": {"first": round(times[0] * 1000), "median": round(sorted(times)[len(times) // 2] * 1000)},
            "tenant_query_ms": {"member": latency.get("member", {}).get("execution_ms"),
                                "service_role": latency.get("service_role", {}).get("execution_ms"),
                                "rows": latency.get("member", {}).get("rows")},
            "errors": figures.get("errors", {}),
        }, indent=2))
    finally:
        if not args.keep:
            drop_database(dsn)


if __name__ == "__main__":
    main()
