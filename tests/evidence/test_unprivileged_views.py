"""The panel's own target work as a role without superuser or pg_read_all_stats."""

import threading

import psycopg
import pytest

from controlpanel.evidence.lockwatch import QUERY_HIDDEN, sample_locks
from controlpanel.targets.connection import connect


def _wait_until_blocked(monitor, pid, attempts=200):
    for _ in range(attempts):
        if monitor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", (pid,)).fetchone()[0]:
            return
        threading.Event().wait(0.05)
    raise AssertionError("the writer never waited")


@pytest.mark.django_db
def test_lock_watch_sees_another_roles_waiter_and_says_its_query_is_hidden(platform_target):
    migration = connect(platform_target, autocommit=False)
    monitor = connect(platform_target)
    writer = psycopg.connect(platform_target.built.admin_dsn, autocommit=True)  # the application: another role
    try:
        migration.execute("LOCK TABLE public.audit_reports IN ACCESS EXCLUSIVE MODE")
        writer_pid = writer.info.backend_pid
        blocked = threading.Thread(target=lambda: writer.execute("SELECT count(*) FROM public.audit_reports"))
        blocked.start()
        _wait_until_blocked(monitor, writer_pid)
        sample = sample_locks(monitor, migration.info.backend_pid)
        waiter = next(w for w in sample["blocked_by_migration"] if w["pid"] == writer_pid)
        assert waiter["direct"] is True and waiter["query"] == QUERY_HIDDEN and waiter["query_visible"] is False
        assert waiter["waiting_seconds"] >= 0 and waiter["wait_event"].startswith("Lock")
        assert {"relation": "audit_reports", "mode": "AccessExclusiveLock", "granted": True,
                "lock": "relation"} in sample["held"]
        migration.rollback()
        blocked.join(10)
    finally:
        migration.close()
        monitor.close()
        writer.close()


@pytest.mark.django_db
def test_the_role_cancels_its_own_backend(platform_target):
    work = connect(platform_target)
    control = connect(platform_target)
    try:
        pid = work.info.backend_pid
        result = {}

        def sleep():
            try:
                work.execute("SELECT pg_sleep(30)")
            except psycopg.errors.QueryCanceled as exc:
                result["cancelled"] = str(exc)

        runner = threading.Thread(target=sleep)
        runner.start()
        for _ in range(200):
            if control.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == "active":
                break
            threading.Event().wait(0.05)
        assert control.execute("SELECT pg_cancel_backend(%s)", (pid,)).fetchone()[0] is True
        runner.join(10)
        assert "canceling statement due to user request" in result["cancelled"]
    finally:
        work.close()
        control.close()
