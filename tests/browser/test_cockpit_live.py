"""The step page stays right without a reload: a step started elsewhere, a backfill paused and resumed, a log tail."""

import psycopg
import pytest

from controlpanel.runs import engine
from controlpanel.runs.models import Attempt
from controlpanel.targets.connection import dsn_for
from tests.conftest import login
from tests.helpers.waiting import wait_until
from tests.runs.conftest import complete_prerequisites, run_step

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]


def test_a_page_left_open_follows_a_step_started_elsewhere(transactional_db, live_server, page, cast, demo_target,
                                                            artifacts_dir):
    alice = cast["alice"]
    run = engine.create_run(demo_target, alice)
    complete_prerequisites(run, alice)
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/runs/{run.pk}/steps/step1.schema/")
    assert page.is_visible("#start-button")

    engine.start_step(run, "step1.schema", cast["lena"], confirm_target=demo_target.name)  # someone else, elsewhere

    page.wait_for_selector('#live[data-status="succeeded"]', timeout=120000)
    assert not page.is_visible("#start-button")  # the actions were refreshed, not only the status
    assert "Attempt 1 succeeded" in page.inner_text("#step-log")
    page.screenshot(path=str(artifacts_dir / "cockpit-stale-page.png"), full_page=True)


def test_a_paused_backfill_says_paused_offers_resume_and_the_log_follows_its_tail(
        transactional_db, live_server, page, cast, target_factory, big_template, artifacts_dir):
    alice = cast["alice"]
    target = target_factory(template=big_template)
    with psycopg.connect(dsn_for(target), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {dsn_for(target).rsplit('/', 1)[1]} SET migration.batch_size = 300")
        # Each backfill batch of audit_reports takes 0.1 s more (200 batches: 20 s), so the pause below lands
        # while batches are still running on any machine (unslowed, the whole step can end before the click).
        conn.execute("CREATE FUNCTION public.test_slow_batch() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER test_slow_batch AFTER UPDATE ON public.audit_reports "
                     "FOR EACH STATEMENT EXECUTE FUNCTION public.test_slow_batch()")
    run = engine.create_run(target, alice)
    complete_prerequisites(run, alice)
    run_step(run, "step1.schema", alice)
    run_step(run, "step1.rls", alice)

    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/runs/{run.pk}/steps/step1.data/")
    page.fill("#confirm_target", target.name)
    page.click("#start-button")
    wait_until(lambda: (Attempt.objects.filter(step__run=run, step__key="step1.data").first() or Attempt())
               .progress.get("backfill", {}).get("rows_done", 0) > 0, timeout=90, what="batches committed")
    page.wait_for_function("document.getElementById('step-log').scrollHeight > "
                           "document.getElementById('step-log').clientHeight + 50", timeout=60000)
    # Following: the newest line is in view after each poll.
    page.wait_for_timeout(2500)
    at_bottom = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 8"
    assert page.eval_on_selector("#step-log", at_bottom)
    # Scrolled up by the reader: following stops and the place is kept across polls.
    page.eval_on_selector("#step-log", "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    assert not page.is_checked("#follow-log")
    page.wait_for_timeout(2500)
    assert page.eval_on_selector("#step-log", "el => el.scrollTop") == 0 and not page.is_checked("#follow-log")
    page.check("#follow-log")
    assert page.eval_on_selector("#step-log", at_bottom)
    page.screenshot(path=str(artifacts_dir / "cockpit-log-tail.png"), full_page=True)

    assert Attempt.objects.get(step__run=run, step__key="step1.data").status == "running"  # else no pause to see
    page.click("#pause-button")
    page.wait_for_selector('#live[data-status="paused"]', timeout=60000)
    assert "Resume continues" in page.inner_text("#step-paused")
    assert not page.query_selector("#step-error")  # a pause is not a failure: no red box, no advice
    assert page.inner_text("#start-button") == "Resume"
    page.screenshot(path=str(artifacts_dir / "cockpit-paused.png"), full_page=True)
    page.fill("#confirm_target", target.name)
    page.click("#start-button")
    page.wait_for_selector('#live[data-status="succeeded"]', timeout=180000)
    with psycopg.connect(dsn_for(target)) as conn:
        assert conn.execute("SELECT count(*) FILTER (WHERE organization_id IS NULL) FROM public.audit_reports"
                            ).fetchone()[0] == 0
