"""How fast the leads' run history renders with 10,000 runs and 1,000,000 step events (goal: < 200 ms).

Creates a throwaway control database, migrates it, bulk-inserts runs, steps, attempts and step events with
INSERT ... SELECT, then renders /leads/history/ (and a run's timeline) with the Django test client as a lead and
prints p50/p95 per case. The first render of a page computes and caches the summaries of its 25 runs (the real
evidence scorecard included); it is reported separately as "cold". The database is dropped unless --keep.
(No target database: this one needs no template from bench/common.py, only its control-database helper.)

    .venv/bin/python bench/bench_history.py [--runs 10000] [--events 1000000] [--repeat 30]
"""

import argparse
import json
import time
import uuid

import common
from psycopg import sql

DB_NAME = f"bench_history_{uuid.uuid4().hex[:8]}"


def percentiles(samples_ms):
    return common.percentiles(samples_ms, digits=1, with_max=False)


def populate(runs: int, events: int) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection

    from controlpanel.core import roles
    from controlpanel.runbook.definition import RUNBOOK
    from controlpanel.runs import bundle
    from controlpanel.targets.models import Target

    groups = roles.ensure_roles()
    people = {}
    for name, role in (("alice", roles.ONCALL), ("omar", roles.ONCALL), ("lena", roles.LEAD)):
        people[name] = User.objects.create_user(name, password=f"{name}-bench-pass")
        people[name].groups.add(groups[role])
    targets = [Target.objects.create(name=n, environment=e, dsn_env_var="BENCH_UNUSED_DSN")
               for n, e in (("demo", "demo"), ("staging", "staging"), ("staging-eu", "staging"),
                            ("production", "production"))]
    checksums = json.dumps(bundle.checksums(bundle.bundle_dir(None)))
    all_keys = [s.key for s in RUNBOOK.all_steps()]
    main_keys = [s.key for s in RUNBOOK.main_steps()]
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute(
            """
            INSERT INTO runs_run (target_id, environment, created_by_id, created_at, bundle_dir, checksums, status,
                                  finished_at, notes)
            SELECT (%(targets)s::bigint[])[1 + g %% 4], (%(environments)s::text[])[1 + g %% 4],
                   (%(people)s::int[])[1 + g %% 2],
                   now() - (%(runs)s - g) * interval '2 hours', 'migrations_sql', %(checksums)s::jsonb,
                   CASE WHEN g %% 20 = 0 OR g %% 10 = 1 THEN 'open' WHEN g %% 10 = 2
                        THEN 'rolled_back' WHEN g %% 20 = 3 THEN 'abandoned' ELSE 'completed' END,
                   CASE WHEN g %% 20 <> 0 AND g %% 10 <> 1
                        THEN now() - (%(runs)s - g) * interval '2 hours' + interval '70 minutes' END,
                   CASE WHEN g %% 10 = 1 THEN 'bench: stopped at a failed step' ELSE '' END
            FROM generate_series(1, %(runs)s) g
            """,
            {"targets": [t.pk for t in targets], "environments": [t.environment for t in targets],
             "people": [people["alice"].pk, people["omar"].pk],
             "runs": runs, "checksums": checksums},
        )
        # Every run has every step; forward steps ran, rollback steps did not. A run whose step failed stays open
        # (the panel has no failed run status): on those the 5th step failed and the later ones are pending.
        cur.execute(
            """
            INSERT INTO runs_steprun (run_id, key, status, started_at, finished_at, sign_off_reason,
                                      flagged_for_investigation)
            SELECT r.id, k.key,
                   CASE WHEN k.n > %(main)s THEN 'pending'
                        WHEN r.notes <> '' AND k.n = 5 THEN 'failed'
                        WHEN r.notes <> '' AND k.n > 5 THEN 'pending'
                        WHEN r.status = 'open' AND k.n > 8 THEN 'pending' ELSE 'succeeded' END,
                   CASE WHEN k.n <= %(main)s THEN r.created_at + k.n * interval '4 minutes' END,
                   CASE WHEN k.n <= %(main)s THEN r.created_at + k.n * interval '4 minutes' + interval '3 minutes'
                   END, '', false
            FROM runs_run r CROSS JOIN unnest(%(keys)s::text[]) WITH ORDINALITY AS k(key, n)
            """,
            {"keys": all_keys, "main": len(main_keys)},
        )
        cur.execute(
            """
            INSERT INTO runs_attempt (step_id, number, status, requested_by_id, params, task_id, worker, queued_at,
                                      started_at, finished_at, cancel_requested, pause_requested, result, progress)
            SELECT s.id, 1, s.status, r.created_by_id, '{}', '', 'bench@worker', s.started_at, s.started_at,
                   s.finished_at, false, false, '{"statements": 12, "seconds": 180}', '{}'
            FROM runs_steprun s JOIN runs_run r ON r.id = s.run_id WHERE s.status <> 'pending'
            """
        )
        cur.execute("SELECT min(id), count(*) FROM runs_attempt")
        first, attempts = cur.fetchone()
        cur.execute(
            """
            INSERT INTO runs_stepevent (attempt_id, at, kind, message, data)
            SELECT %(first)s + g %% %(attempts)s, now() - g * interval '1 second',
                   (ARRAY['info','statement','notice','output','output','locks'])[1 + g %% 6],
                   'statement ' || g || ': ALTER TABLE public.audit_reports ADD COLUMN IF NOT EXISTS organization_id',
                   '{}'
            FROM generate_series(1, %(events)s) g
            """,
            {"first": first, "attempts": attempts, "events": events},
        )
        for table in ("runs_run", "runs_steprun", "runs_attempt", "runs_stepevent"):
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)).as_string(cur.connection))
        cur.execute("SELECT (SELECT count(*) FROM runs_run), (SELECT count(*) FROM runs_steprun), "
                    "(SELECT count(*) FROM runs_attempt), (SELECT count(*) FROM runs_stepevent)")
        counts = dict(zip(("runs", "steps", "attempts", "events"), cur.fetchone(), strict=True))
    return {"counts": counts, "lead": people["lena"], "targets": targets}


def render(client, url, params=None) -> float:
    started = time.perf_counter()
    response = client.get(url, params or {})
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with common.control_database(DB_NAME, keep=args.keep):
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.test.utils import setup_test_environment
        from django.urls import reverse

        setup_test_environment()
        started = time.monotonic()
        call_command("migrate", verbosity=0)
        data = populate(args.runs, args.events)
        print(f"control DB {DB_NAME}: {data['counts']} in {time.monotonic() - started:.1f} s", flush=True)
        client = Client()
        client.force_login(data["lead"])
        url = reverse("leads:history")
        last = -(-data["counts"]["runs"] // 25)
        cases = {
            "page 1": {},
            "page 200": {"page": 200},
            "last page": {"page": last},
            "environment=production": {"environment": "production"},
            "status=rolled_back": {"status": "rolled_back"},
            "person=omar": {"person": "omar"},
            "target + since": {"target": data["targets"][1].pk, "since": "2000-01-01"},
        }
        cold = {name: round(render(client, url, params), 1) for name, params in cases.items()}
        print(f"cold (computes and caches 25 summaries per page): {json.dumps(cold)}", flush=True)
        warm, all_samples = {}, []
        for name, params in cases.items():
            samples = [render(client, url, params) for _ in range(args.repeat)]
            warm[name] = percentiles(samples)
            all_samples += samples
        with connection.cursor() as cur:
            cur.execute("SELECT max(id) FROM runs_run")
            newest = cur.fetchone()[0]
        timeline = reverse("leads:timeline", args=[newest])
        render(client, timeline)
        timeline_ms = percentiles([render(client, timeline) for _ in range(args.repeat)])
        print(json.dumps({"data": data["counts"], "history_warm": warm, "history_all_warm": percentiles(all_samples),
                          "history_cold_ms": cold, "timeline_one_run": timeline_ms}, indent=2))
        worst = max(w["p95_ms"] for w in warm.values())
        print(f"worst warm p95: {worst:.1f} ms ({'under' if worst < 200 else 'OVER'} the 200 ms goal)")
        common.headline("history", "history page worst warm p95", f"{worst:.1f} ms ({data['counts']['runs']} runs, "
                        f"{data['counts']['events']} events)", "p95 < 200 ms", worst < 200)
        common.headline("history", "history cold render (worst)", f"{max(cold.values()):.1f} ms")
        common.headline("history", "run timeline p95", f"{timeline_ms['p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
