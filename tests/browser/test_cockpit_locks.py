"""The lock view tells the truth: a real session blocks "Apply RLS policies"; the page names it, the log keeps the
bundle's retry NOTICEs, and the evidence judges the wait."""

import psycopg
import pytest

from controlpanel.evidence.locks import judge_run_locks
from controlpanel.runs import engine
from controlpanel.targets.connection import dsn_for
from tests.conftest import login
from tests.helpers.waiting import wait_step
from tests.runs.conftest import complete_prerequisites, run_step

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]


def test_the_page_names_the_session_the_migration_waits_on(transactional_db, live_server, page, cast, demo_target,
                                                           artifacts_dir):
    alice = cast["alice"]
    run = engine.create_run(demo_target, alice)
    complete_prerequisites(run, alice)
    assert run_step(run, "step1.schema", alice).status == "succeeded"

    blocker = psycopg.connect(dsn_for(demo_target), application_name="cockpit-blocker")
    blocker.execute("SELECT count(*) FROM public.audit_reports")  # an open transaction holding ACCESS SHARE
    blocker_pid = blocker.info.backend_pid
    try:
        login(page, live_server, "alice")
        page.goto(f"{live_server.url}/runs/{run.pk}/steps/step1.rls/")
        page.fill("#confirm_target", demo_target.name)
        page.click("#start-button")
        waiting = page.wait_for_selector('#locks[data-migration-waiting="yes"]', timeout=60000)
        text = waiting.inner_text()
        assert f"The migration waits on pid {blocker_pid}" in text and "cockpit-blocker" in text
        assert "idle in transaction" in text and "audit_reports" in text
        page.wait_for_selector("#lock-retries", timeout=30000)
        assert "tenant tables busy" in page.inner_text("#lock-retries")
        page.screenshot(path=str(artifacts_dir / "cockpit-lock-wait.png"), full_page=True)
    finally:
        blocker.rollback()
        blocker.close()

    step = wait_step(run, "step1.rls")
    assert step.status == "succeeded"
    attempt = step.attempts.get()
    assert attempt.result["lock_retries"] >= 1 and attempt.result["lock_retry_notices"] >= 1
    assert attempt.result["locks"]["migration_wait_seconds"] > 1.0
    assert attempt.result["locks"]["migration_blockers"][0]["pid"] == blocker_pid
    assert attempt.events.filter(kind="notice", data__lock_retry=True).exists()
    verdict = judge_run_locks(run)
    assert not verdict["passed"] and verdict["migration_wait_seconds"] > 1.0 and verdict["lock_retries"] >= 1
