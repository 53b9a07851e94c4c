"""Live pages: 100 viewers polling every 2 s, page by page: an empty Django view (the floor), the step's live
fragment, the run page and the run page's polled header.

Builds a throwaway control database with a run whose backfill step is "running" (progress, locks and 200
log lines, as a real step has), serves it with gunicorn as `make up` does, and drives it with locust, one page
at a time. Viewers arrive signed in (one session each), as on-call engineers watching a step are. Prints p50/p95
of each page and its ratio to the floor, and the control DB queries per request measured in-process with 10 and
200 log lines (constant means a request does not grow with the log).

    python bench/bench_live.py [--users 100] [--seconds 60]
"""

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

ROOT = common.ROOT
DB_NAME = os.environ.get("BENCH_LIVE_DB", "cp_bench_live")  # another name when several people bench at once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_control_db():
    """Migrate the (new, empty) control database and create the running step the viewers watch."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User
    from django.utils import timezone

    from controlpanel.core import roles
    from controlpanel.runs.models import Attempt, Run, StepEvent, StepRun
    from controlpanel.targets.models import Target

    group = roles.ensure_roles()[roles.ONCALL]
    user = User.objects.create_user("viewer", password="viewer-bench-pass")
    user.groups.add(group)
    target = Target.objects.create(name="bench", environment="demo", dsn_env_var="BENCH_UNUSED_DSN")
    run = Run.objects.create(target=target, created_by=user, bundle_dir=str(ROOT / "migrations_sql"), checksums={})
    step = StepRun.objects.create(run=run, key="step1.data", status="running", started_at=timezone.now())
    attempt = Attempt.objects.create(
        step=step, number=1, requested_by=user, status="running", worker="bench@host", backend_pid=4242,
        started_at=timezone.now(), heartbeat_at=timezone.now(),
        progress={"statement": "[10/83] CALL public.mt_backfill_organization_ids(0.03125)",
                  "backfill": {"tables": [{"table": t, "rows_total": 1000000, "rows_done": 400000, "status": "running"}
                                          for t in ("audit_reports", "automation_jobs", "profiles")],
                               "rows_done": 1200000, "rows_total": 3000000, "rate": 41000.0, "eta_seconds": 44},
                  "locks": {"waiting": [], "blocked_by_migration": [], "longest_wait_seconds": 0.0,
                            "held": [{"lock": "relation", "mode": "RowExclusiveLock", "granted": True,
                                      "relation": "audit_reports"}]}},
    )
    return user, run, step, attempt, StepEvent


def queries_per_poll(user, run, attempt, StepEvent) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    counts = {}
    for lines in (10, 200):
        StepEvent.objects.filter(attempt=attempt).delete()
        StepEvent.objects.bulk_create(StepEvent(attempt=attempt, kind="statement", message=f"[{i}] UPDATE batch {i}")
                                      for i in range(lines))
        for name, path in pages(run)[1:]:
            client.get(path)  # warm
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, HTTP_HX_REQUEST="true")
            assert response.status_code == 200, (path, response.status_code)
            counts[(name, lines)] = len(captured)
    return counts


def pages(run) -> list[tuple[str, str]]:
    """(name, path) of what the viewers poll; the first is the floor."""
    from controlpanel.runs import cockpit

    steps, attempts = cockpit.load(run)
    return [("empty view", "/bench/empty/"),
            ("live fragment", f"/runs/{run.pk}/steps/step1.data/live/"),
            ("run page", f"/runs/{run.pk}/"),
            ("run header", f"/runs/{run.pk}/live/?seen={cockpit.version(run, steps, attempts)}")]


def viewer_sessions(user, count: int) -> str:
    """One signed-in session per viewer, as the login view would create."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    keys = []
    for _ in range(count):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    return ",".join(keys)


def run_locust(name: str, path: str, users: int, seconds: int, sessions: str) -> dict:
    port = free_port()
    env = dict(os.environ, CONTROL_DB_NAME=DB_NAME, WEB_PORT=str(port), DJANGO_SETTINGS_MODULE="bench_settings",
               PYTHONPATH=os.pathsep.join([str(ROOT / "bench"), str(ROOT)]))
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "controlpanel.wsgi", "--bind", f"127.0.0.1:{port}",
                               "--workers", "3", "--threads", "4", "--keep-alive", "5", "--log-level", "warning"],
                              cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            prefix = Path(tmp) / "live"
            subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locust_live.py"), "--headless",
                 "-u", str(users), "-r", str(max(users // 5, 1)), "-t", f"{seconds}s", "--host",
                 f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
                # locust exits non-zero when any request failed: the failures are counted and printed below
                cwd=ROOT, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=dict(env, BENCH_PATH=path, BENCH_NAME=name, BENCH_SESSIONS=sessions),
            )
            with open(f"{prefix}_stats.csv") as fh:
                rows = {row["Name"]: row for row in csv.DictReader(fh)}
        return rows[name]
    finally:
        server.terminate()
        server.wait(10)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    with common.control_database(DB_NAME):
        user, run, step, attempt, StepEvent = build_control_db()
        counts = queries_per_poll(user, run, attempt, StepEvent)
        sessions = viewer_sessions(user, args.users)
        results = [(name, path, run_locust(name, path, args.users, args.seconds, sessions))
                   for name, path in pages(run)]
    floor = results[0][2]
    print(f"{args.users} viewers, each polling every 2 s for {args.seconds} s, one page at a time")
    print(f"  {'page':<14} {'requests':>8} {'failed':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'p95 / floor':>11}  queries (10 / 200 log lines)")
    for name, _path, stats in results:
        ratio = float(stats["95%"]) / max(float(floor["95%"]), 1.0)
        queries = (f"{counts[(name, 10)]} / {counts[(name, 200)]}" if (name, 10) in counts else "-")
        print(f"  {name:<14} {stats['Request Count']:>8} {stats['Failure Count']:>6} "
              f"{float(stats['Requests/s']):>7.1f} {stats['50%']:>7} {stats['95%']:>7} {stats['99%']:>7} "
              f"{ratio:>11.2f}  {queries}")
    for name, _path, stats in results[1:]:
        p95 = float(stats["95%"])
        common.headline("live", f"{name} p95 ({args.users} viewers)",
                        f"{stats['95%']} ms (p50 {stats['50%']} ms, floor p95 {floor['95%']} ms, "
                        f"{stats['Failure Count']} failed requests)", "p95 < 50 ms", p95 < 50)
        common.headline("live", f"{name}: control DB queries per request",
                        f"{counts[(name, 10)]} (10 lines) / {counts[(name, 200)]} (200 lines)", "constant",
                        counts[(name, 10)] == counts[(name, 200)])


if __name__ == "__main__":
    main()
