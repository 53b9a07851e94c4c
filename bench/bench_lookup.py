"""How fast support's membership lookups answer on a large migrated target (goal: p95 < 200 ms).

Builds a throwaway target (default 100,000 users, 1,000,000 reports) with controlpanel.targets.seeding, applies
the forward bundle with `psql -v ON_ERROR_STOP=1 -f`, spreads the users over organizations, then times each
lookup function of controlpanel.support.lookups (the SQL part, on one open connection) and the worker's path
minus the queue (open the read-only lookup connection + query + close). The database is dropped unless --keep.

    .venv/bin/python bench/bench_lookup.py [--users 100000] [--reports 1000000] [--organizations 1000] [--samples 200]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from controlpanel.support import lookups  # noqa: E402
from controlpanel.targets.demo import build_target, drop_database  # noqa: E402
from controlpanel.targets.seeding import distribute_into_organizations  # noqa: E402

FORWARD = ("20250904000001_add_multi_tenant_organizations.sql", "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")
DSN_VAR = "BENCH_LOOKUP_TARGET_DSN"


def timed(label, fn):
    started = time.monotonic()
    result = fn()
    print(f"{label}: {time.monotonic() - started:.1f} s", flush=True)
    return result


def apply_bundle(dsn: str) -> None:
    env = {**os.environ, "PGDATABASE": conninfo_to_dict(dsn)["dbname"]}
    for name in FORWARD:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(ROOT / "migrations_sql" / name)],
                       check=True, env=env, capture_output=True)


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2),
            "max_ms": round(ordered[-1], 2)}


def measure(fn, args_list) -> dict:
    times = []
    for args in args_list:
        started = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--organizations", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--server", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    dsn = make_conninfo(args.server, dbname=f"bench_lookup_{uuid.uuid4().hex[:8]}")
    os.environ.setdefault("PGHOST", conninfo_to_dict(dsn).get("host", "127.0.0.1"))
    os.environ.setdefault("PGUSER", conninfo_to_dict(dsn).get("user", "postgres"))
    os.environ[DSN_VAR] = dsn
    target = SimpleNamespace(name="bench-lookup", dsn_env_var=DSN_VAR)
    try:
        timed(f"seed {args.users:,} users / {args.reports:,} reports",
              lambda: build_target(dsn, users=args.users, reports=args.reports))
        timed("apply the bundle with psql", lambda: apply_bundle(dsn))
        timed(f"spread over {args.organizations:,} organizations",
              lambda: distribute_into_organizations(dsn, args.organizations))
        with psycopg.connect(dsn, autocommit=True) as conn:
            users = conn.execute("SELECT id::text, email FROM auth.users ORDER BY random() LIMIT %s",
                                 (args.samples,)).fetchall()
            orgs = conn.execute("SELECT slug, name FROM public.organizations ORDER BY random() LIMIT %s",
                                (args.samples,)).fetchall()
            # A few users lose their memberships, so the "without membership" list has something to find.
            conn.execute("DELETE FROM public.organization_memberships WHERE user_id IN "
                         "(SELECT id FROM auth.users ORDER BY random() LIMIT 25)")
        figures = {}
        with lookups.lookup_connection(target) as conn:
            lookups.find_person(conn, users[0][1])  # warm the plan cache the way a worker would be warm
            figures["person_by_email"] = measure(lambda e: lookups.find_person(conn, e), [(u[1],) for u in users])
            figures["person_by_email_other_case"] = measure(lambda e: lookups.find_person(conn, e.upper()),
                                                            [(u[1],) for u in users[:50]])
            figures["person_by_id"] = measure(lambda i: lookups.find_person(conn, i), [(u[0],) for u in users])
            figures["organization_by_slug"] = measure(lambda s: lookups.find_organization(conn, s),
                                                      [(o[0],) for o in orgs])
            figures["organization_by_name"] = measure(lambda n: lookups.find_organization(conn, n),
                                                      [(o[1],) for o in orgs])
            figures["organization_members_page_2"] = measure(lambda s: lookups.find_organization(conn, s, 2),
                                                             [(o[0],) for o in orgs[:50]])
            figures["users_without_membership"] = measure(lambda: lookups.users_without_membership(conn),
                                                          [()] * 20)
            default_slug = conn.execute("SELECT slug FROM public.organizations WHERE is_default").fetchone()[0]
            figures["default_organization"] = measure(lambda: lookups.find_organization(conn, default_slug), [()] * 20)

        def worker_path(email):
            with lookups.lookup_connection(target) as conn:
                lookups.find_person(conn, email)

        figures["worker_path_connect_query_close"] = measure(worker_path, [(u[1],) for u in users[:100]])
        print(json.dumps({"users": args.users, "reports": args.reports, "organizations": args.organizations,
                          "lookups": figures}, indent=2))
        worst = max(f["p95_ms"] for f in figures.values())
        print(f"worst p95: {worst:.1f} ms ({'under' if worst < 200 else 'OVER'} the 200 ms goal)")
    finally:
        if not args.keep:
            drop_database(dsn)


if __name__ == "__main__":
    main()
