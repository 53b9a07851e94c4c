"""Faults an on-call engineer meets at 3 a.m., each against the real worker, Redis and PostgreSQL."""

import os
import signal
import subprocess
import threading
import time

import psycopg
import pytest
from django.db import connection as control_connection

from controlpanel.runs import engine, runner
from controlpanel.runs.models import Attempt, Run, StepEvent
from controlpanel.targets.catalog import schema_fingerprint
from controlpanel.targets.connection import dsn_for
from controlpanel.targets.models import Target
from tests.helpers.waiting import wait_step, wait_until

from .conftest import complete_prerequisites, run_step

pytestmark = pytest.mark.usefixtures("celery_worker")


def target_sql(target, sql, params=None):
    with psycopg.connect(dsn_for(target), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def organizations_exist(target) -> bool:
    return target_sql(target, "SELECT to_regclass('public.organizations') IS NOT NULL")[0][0]


def running_attempt(run, key):
    def find():
        return Attempt.objects.filter(step__run=run, step__key=key, status="running",
                                      backend_pid__isnull=False).first()
    return wait_until(find, what=f"{key} running")


@pytest.fixture
def migrated_prereqs(transactional_db, oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    complete_prerequisites(run, oncall)
    return run


def test_a_syntax_error_fails_naming_file_statement_and_position(transactional_db, oncall, demo_target,
                                                                  bundle_copy):
    path = bundle_copy / "20250904000001_add_multi_tenant_organizations.sql"
    path.write_text(path.read_text() + "\nCREATE TABLEE public.oops (id int);\n")
    run = engine.create_run(demo_target, oncall, bundle_dir=bundle_copy)
    complete_prerequisites(run, oncall)
    with psycopg.connect(dsn_for(demo_target)) as conn:
        before = schema_fingerprint(conn)

    step = run_step(run, "step1.schema", oncall)

    assert step.status == "failed"
    error = step.attempts.get().error
    assert error["file"] == path.name
    assert "TABLEE" in error["statement"] and error["position"] and error["line"]
    assert "syntax error" in error["message"]
    with psycopg.connect(dsn_for(demo_target)) as conn:
        assert schema_fingerprint(conn) == before  # nothing ran: the file is parsed before executing


def test_a_changed_bundle_file_is_refused(transactional_db, oncall, demo_target, bundle_copy):
    run = engine.create_run(demo_target, oncall, bundle_dir=bundle_copy)
    complete_prerequisites(run, oncall)
    (bundle_copy / "20250904000002_add_organization_rls_policies.sql").write_text("-- edited after the run\n")
    # The first file still matches, but every SQL step is refused while any pinned file differs.
    with pytest.raises(engine.StepRefused, match="20250904000002_add_organization_rls_policies.sql"):
        engine.start_step(run, "step1.schema", oncall, confirm_target=demo_target.name)
    assert not Attempt.objects.filter(step__run=run, step__key="step1.schema").exists()
    assert not organizations_exist(demo_target)


def test_an_unreachable_target_fails_with_a_clear_error(transactional_db, oncall):
    target = Target.objects.create(name="gone", environment="staging", dsn_env_var="CP_TEST_UNREACHABLE_DSN")
    run = engine.create_run(target, oncall)
    step = run_step(run, "pre.assessment", oncall)
    assert step.status == "failed"
    message = step.attempts.get().error["message"]
    assert message.startswith("Target gone is unreachable")
    assert os.environ["CP_TEST_UNREACHABLE_DSN"] not in message


def test_two_simultaneous_starts_execute_once(migrated_prereqs, oncall):
    run = migrated_prereqs
    outcomes = []
    barrier = threading.Barrier(2)

    def click():
        barrier.wait()
        try:
            outcomes.append(engine.start_step(run, "step1.schema", oncall, confirm_target=run.target.name))
        except engine.StepRefused as exc:
            outcomes.append(exc)
        finally:
            control_connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(o, Attempt) for o in outcomes) == 1
    assert sum(isinstance(o, engine.StepRefused) for o in outcomes) == 1
    step = wait_step(run, "step1.schema")
    assert step.status == "succeeded"
    attempt = step.attempts.get()
    assert StepEvent.objects.filter(attempt=attempt, message__contains="started on").count() == 1

    # A redelivered message for the same attempt changes nothing.
    assert runner.execute(attempt.pk, worker="duplicate") is None
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.worker != "duplicate"


def test_a_second_worker_finds_the_target_lock_taken(migrated_prereqs, oncall):
    run = migrated_prereqs
    with psycopg.connect(dsn_for(run.target), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (runner.TARGET_LOCK_KEY,))
        step = run_step(run, "step1.schema", oncall)
    assert step.status == "failed"
    assert "holds the migration lock" in step.attempts.get().error["message"]
    assert not organizations_exist(run.target)


def test_terminating_the_step_connection_fails_cleanly(migrated_prereqs, oncall):
    run = migrated_prereqs
    with psycopg.connect(dsn_for(run.target)) as blocker:
        blocker.execute("LOCK TABLE public.audit_reports IN ACCESS SHARE MODE")  # 0001's ALTER TABLE waits
        engine.start_step(run, "step1.schema", oncall, confirm_target=run.target.name)
        attempt = running_attempt(run, "step1.schema")
        wait_until(lambda: target_sql(run.target, "SELECT wait_event_type = 'Lock' FROM pg_stat_activity "
                                                  "WHERE pid = %s", (attempt.backend_pid,)) == [(True,)],
                   what="the step to wait on the lock")
        target_sql(run.target, "SELECT pg_terminate_backend(%s)", (attempt.backend_pid,))
        step = wait_step(run, "step1.schema")
        blocker.rollback()
    assert step.status == "failed"
    assert "lost" in step.attempts.get().error["message"] or "terminat" in step.attempts.get().error["message"]
    assert not organizations_exist(run.target)


def test_cancel_rolls_back_the_open_transaction(migrated_prereqs, oncall):
    run = migrated_prereqs
    with psycopg.connect(dsn_for(run.target)) as blocker:
        blocker.execute("LOCK TABLE public.audit_reports IN ACCESS SHARE MODE")
        engine.start_step(run, "step1.schema", oncall, confirm_target=run.target.name)
        running_attempt(run, "step1.schema")
        engine.cancel_step(run, "step1.schema", oncall)
        step = wait_step(run, "step1.schema")
        blocker.rollback()
    assert step.status == "cancelled"
    assert "rolled back" in step.attempts.get().error["message"]
    assert not organizations_exist(run.target)


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of our own on a free port, so the test can stop it without disturbing anyone else."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0,
               what="private redis")
    yield port, process
    if process.poll() is None:
        process.kill()


def use_broker(app, url):
    """Point this process's Celery app at another broker, dropping pooled connections to the old one."""
    import kombu.pools

    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url


def test_redis_down_says_the_queue_is_unavailable(migrated_prereqs, oncall, private_redis):
    from controlpanel.celery import app

    run = migrated_prereqs
    port, process = private_redis
    original = app.conf.broker_url
    use_broker(app, f"redis://127.0.0.1:{port}/0")
    try:
        process.send_signal(signal.SIGTERM)  # Redis stops
        process.wait(10)
        started = time.monotonic()
        with pytest.raises(engine.QueueUnavailable, match="queue .*unavailable"):
            engine.start_step(run, "step1.schema", oncall, confirm_target=run.target.name)
        assert time.monotonic() - started < 15
    finally:
        use_broker(app, original)
    step = run.steps.get(key="step1.schema")
    assert step.status == "pending"  # not left queued forever
    assert step.attempts.get().status == "failed"


def test_killed_worker_interrupts_the_backfill_and_resume_loses_nothing(
        transactional_db, oncall, target_factory, celery_worker, settings, big_template):
    target = target_factory(template=big_template)
    target_sql(target, f"ALTER DATABASE {dsn_for(target).rsplit('/', 1)[1]} SET migration.batch_size = 300")
    before = dict(target_sql(target, "SELECT 'audit_reports', count(*) FROM public.audit_reports UNION ALL "
                                     "SELECT 'automation_jobs', count(*) FROM public.automation_jobs"))
    run = engine.create_run(target, oncall)
    complete_prerequisites(run, oncall)
    run_step(run, "step1.schema", oncall)
    run_step(run, "step1.rls", oncall)

    engine.start_step(run, "step1.data", oncall, confirm_target=target.name)
    attempt = running_attempt(run, "step1.data")
    wait_until(lambda: (Attempt.objects.get(pk=attempt.pk).progress.get("backfill") or {}).get("rows_done", 0) > 0,
               what="backfill progress")
    # kill -9 this session's pool processes (one of them runs the step and its heartbeat)
    for pid in celery_worker.child_pids():
        os.kill(pid, signal.SIGKILL)

    settings.STEP_STALE_AFTER_SECONDS = 3
    time.sleep(4)
    wait_until(lambda: engine.reap_stale_steps() or Attempt.objects.get(pk=attempt.pk).status == "interrupted",
               timeout=30, what="reaper")
    step = run.steps.get(key="step1.data")
    assert step.status == "interrupted"
    done_at_interrupt = sum(t["rows_done"] for t in Attempt.objects.get(pk=attempt.pk).progress["backfill"]["tables"])
    assert done_at_interrupt > 0

    wait_until(lambda: not target_sql(target, "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE "
                                              "'controlpanel-step1.data%%'"), timeout=30,
               what="the dead worker's session to end")
    engine.start_step(run, "step1.data", oncall, confirm_target=target.name, resume=True)
    step = wait_step(run, "step1.data", timeout=300)
    assert step.status == "succeeded", step.attempts.order_by("-number").first().error
    after = dict(target_sql(target, "SELECT 'audit_reports', count(*) FROM public.audit_reports UNION ALL "
                                    "SELECT 'automation_jobs', count(*) FROM public.automation_jobs"))
    assert after == before
    assert target_sql(target, "SELECT count(*) FROM public.audit_reports WHERE organization_id IS NULL") == [(0,)]
    assert Run.objects.get(pk=run.pk).steps.get(key="step1.data").attempts.count() == 2
