"""Interrupted backfill resumes; concurrent single-tenant writers are never blocked for long."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time

from sqlb_helpers import (
    CATEGORIES,
    FORWARD,
    PGHOST,
    PGPORT,
    PGUSER,
    connect,
    migrate,
    psql,
    validate,
)

from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts

SMALL_BATCH = {"PGOPTIONS": "-c migration.batch_size=2000"}


def _progress(dbname, table="audit_reports"):
    with connect(dbname) as conn:
        return conn.execute(
            "SELECT rows_done, last_key, status, started_at, batches, rows_total FROM migration_progress "
            "WHERE table_name = %s", (table,)).fetchone()


def test_backfill_interrupted_then_resumed(big_template, clone):
    control, victim = clone(big_template), clone(big_template)
    for db in (control, victim):
        for path in FORWARD[:2]:
            psql(db, path)
    psql(control, FORWARD[2], env_extra=SMALL_BATCH)

    app = f"sqlb_resume_{os.getpid()}"
    env = {**os.environ, "PGHOST": PGHOST, "PGPORT": PGPORT, "PGUSER": PGUSER, "PGAPPNAME": app, **SMALL_BATCH}
    proc = subprocess.Popen(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", victim, "-f", str(FORWARD[2])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    total = big_template.counts["public.audit_reports"]
    deadline = time.monotonic() + 120
    killed_at = None
    with connect(victim) as watcher:
        while time.monotonic() < deadline and proc.poll() is None:
            row = watcher.execute(
                "SELECT rows_done FROM migration_progress WHERE table_name = 'audit_reports'").fetchone()
            if row and total * 0.3 <= row[0] < total * 0.8:
                killed = watcher.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                    "AND datname = current_database()", (app,)).fetchall()
                assert killed and all(k[0] for k in killed)
                killed_at = row[0]
                break
            time.sleep(0.01)
    proc.communicate(timeout=60)
    assert killed_at is not None, "backfill finished before it could be interrupted"
    assert proc.returncode != 0

    done_k, last_key_k, status_k, started_k, batches_k, _ = _progress(victim)
    assert status_k == "running" and 0 < done_k < total and last_key_k not in (None, "(0,0)")
    print(f"\ninterrupted at rows_done={done_k} of {total}, last_key={last_key_k}, batches={batches_k}")

    psql(victim, FORWARD[2], env_extra=SMALL_BATCH)  # the re-run resumes
    done, _, status, started, batches, rows_total = _progress(victim)
    control_progress = _progress(control)
    assert status == "done" and done == total == rows_total
    assert started == started_k  # same run continued, not restarted
    # A restart from page 0 would have needed all of the control's batches again on top of batches_k.
    assert batches == control_progress[4], (batches, control_progress[4])
    assert batches < batches_k + control_progress[4]

    with connect(control) as c1, connect(victim) as c2:
        assert diff_fingerprints(schema_fingerprint(c1), schema_fingerprint(c2)) == []
        tables = ["auth.users", "public.profiles", "public.audit_reports", "public.automation_jobs",
                  "public.generated_automations", "public.waitlist", "public.organization_memberships"]
        assert table_counts(c1, tables) == table_counts(c2, tables)
    res, output = validate(victim)
    assert set(res.values()) == {"PASSED"} and len(res) == len(CATEGORIES), output


def test_invalid_leftover_index_is_rebuilt(small_template, clone):
    db = clone(small_template)
    migrate(db)
    with connect(db) as conn:
        # What an interrupted CREATE INDEX CONCURRENTLY leaves behind: an index marked invalid.
        conn.execute("UPDATE pg_index SET indisvalid = false "
                     "WHERE indexrelid = 'public.idx_audit_reports_organization_id_created_at'::regclass")
    proc = psql(db, FORWARD[2])
    assert "dropping invalid index idx_audit_reports_organization_id_created_at" in proc.stderr
    with connect(db) as conn:
        valid = conn.execute("SELECT indisvalid FROM pg_index "
                             "WHERE indexrelid = 'public.idx_audit_reports_organization_id_created_at'::regclass")
        assert valid.fetchone()[0] is True


def test_concurrent_single_tenant_writer_never_waits_long(big_template, clone):
    db = clone(big_template)
    with connect(db) as conn:
        users = [r[0] for r in conn.execute("SELECT id FROM auth.users LIMIT 200")]
        reports = [r[0] for r in conn.execute("SELECT id FROM audit_reports TABLESAMPLE SYSTEM (2) LIMIT 500")]
    stop = threading.Event()
    waits: list[float] = []
    errors: list[BaseException] = []

    def writer():
        rnd = random.Random(1)
        try:
            with connect(db) as conn:
                # Old single-tenant code as Workers run it (service role): no organization_id anywhere.
                conn.execute("SET ROLE service_role")
                while not stop.is_set():
                    user = rnd.choice(users)
                    t0 = time.perf_counter()
                    rid = conn.execute(
                        "INSERT INTO audit_reports (user_id, title, process_description) "
                        "VALUES (%s, 'concurrent', 'written during the migration') RETURNING id", (user,)
                    ).fetchone()[0]
                    waits.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    jid = conn.execute(
                        "INSERT INTO automation_jobs (user_id, audit_report_id, status) VALUES (%s, %s, 'completed') "
                        "RETURNING id", (user, rid)).fetchone()[0]
                    conn.execute("INSERT INTO generated_automations (job_id, name) VALUES (%s, 'concurrent')", (jid,))
                    waits.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    conn.execute("UPDATE audit_reports SET is_favorite = NOT is_favorite WHERE id = %s",
                                 (rnd.choice(reports),))
                    waits.append(time.perf_counter() - t0)
                    time.sleep(0.002)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(0.3)
    started = time.perf_counter()
    migrate(db)
    elapsed = time.perf_counter() - started
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=30)
    assert not errors, errors
    worst = max(waits)
    print(f"\nmigration took {elapsed:.1f} s; writer statements: {len(waits)}, worst wait {worst * 1000:.0f} ms, "
          f"p99 {sorted(waits)[int(len(waits) * 0.99)] * 1000:.1f} ms")
    assert len(waits) > 100
    assert worst < 1.0
    with connect(db) as conn:
        # Every concurrent single-tenant write landed in its writer's personal organization.
        n = conn.execute("SELECT count(*) FROM audit_reports WHERE title = 'concurrent' "
                         "AND organization_id = user_id").fetchone()[0]
        assert n == len(waits) // 3 or n >= len(waits) // 3 - 1
    res, output = validate(db)
    assert set(res.values()) == {"PASSED"}, output


def test_leftover_of_interrupted_reindex_is_dropped(small_template, clone):
    db = clone(small_template)
    migrate(db)
    with connect(db) as conn:
        fp = schema_fingerprint(conn)
        # What an interrupted REINDEX CONCURRENTLY leaves behind: an invalid copy named <index>_ccnew.
        conn.execute("CREATE INDEX idx_audit_reports_user_id_ccnew ON public.audit_reports (user_id)")
        conn.execute("UPDATE pg_index SET indisvalid = false "
                     "WHERE indexrelid = 'public.idx_audit_reports_user_id_ccnew'::regclass")
    proc = psql(db, FORWARD[2])
    assert "dropping invalid index idx_audit_reports_user_id_ccnew" in proc.stderr
    with connect(db) as conn:
        assert conn.execute("SELECT to_regclass('public.idx_audit_reports_user_id_ccnew')").fetchone()[0] is None
        assert diff_fingerprints(fp, schema_fingerprint(conn)) == []
    res, output = validate(db)
    assert set(res.values()) == {"PASSED"} and len(res) == len(CATEGORIES), output
