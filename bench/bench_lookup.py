"""How fast support's membership lookups answer on a large migrated target (goal: p95 < 200 ms).

Uses a cached target template (default 100,000 users, 1,000,000 reports, 1,000 organizations: seeded with
controlpanel.targets.seeding, the forward bundle applied with `psql -v ON_ERROR_STOP=1 -f`, the users spread
over organizations; see bench/common.py), clones it, then times each lookup function of
controlpanel.support.lookups (the SQL part, on one open connection) and the worker's path minus the queue
(open the read-only lookup connection + query + close). The clone is dropped unless --keep.

    .venv/bin/python bench/bench_lookup.py [--users 100000] [--reports 1000000] [--organizations 1000] [--samples 200]
"""

import argparse
import json
import os
from types import SimpleNamespace

import common

common.setup_django()

import psycopg  # noqa: E402

from controlpanel.support import lookups  # noqa: E402

DSN_VAR = "BENCH_LOOKUP_TARGET_DSN"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--organizations", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=200)
    common.add_server_arguments(parser)
    args = common.parse_server_arguments(parser)
    template = common.migrated_target(args.users, args.reports, args.organizations)
    with common.cloned(template, "bench_lookup", keep=args.keep) as (_name, dsn):
        os.environ[DSN_VAR] = dsn
        target = SimpleNamespace(name="bench-lookup", dsn_env_var=DSN_VAR)
        with psycopg.connect(dsn, autocommit=True) as conn:
            users = conn.execute("SELECT id::text, email FROM auth.users ORDER BY random() LIMIT %s",
                                 (args.samples,)).fetchall()
            orgs = conn.execute("SELECT slug, name FROM public.organizations ORDER BY random() LIMIT %s",
                                (args.samples,)).fetchall()
            # A few users lose their memberships, so the "without membership" list has something to find.
            conn.execute("DELETE FROM public.organization_memberships WHERE user_id IN "
                         "(SELECT id FROM auth.users ORDER BY random() LIMIT 25)")
        figures = {}
        measure = common.sample_ms
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
        os.environ.pop(DSN_VAR, None)
        print(json.dumps({"users": args.users, "reports": args.reports, "organizations": args.organizations,
                          "lookups": figures}, indent=2))
        worst_name, worst = max(((name, f["p95_ms"]) for name, f in figures.items()), key=lambda item: item[1])
        print(f"worst p95: {worst:.1f} ms ({'under' if worst < 200 else 'OVER'} the 200 ms goal)")
        common.headline("lookup", "worst lookup p95", f"{worst:.1f} ms ({worst_name})", "p95 < 200 ms", worst < 200)


if __name__ == "__main__":
    main()
