"""An on-call engineer walks the whole runbook in chromium: checklists, live logs, every step green."""

import pytest

from controlpanel.runbook.definition import RUNBOOK, Kind
from controlpanel.runs.models import Run
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]


def finish_step(page, step, target_name):
    if step.kind == Kind.CHECKLIST:
        for item in step.items:
            if not item.verifier:
                page.click(f'li[data-item="{item.key}"] button')
                page.wait_for_selector(f'li[data-item="{item.key}"][data-ticked="yes"]')
        if any(item.verifier for item in step.items):
            page.click("#start-button")
    elif step.kind == Kind.COMMAND:
        page.fill("#signoff-note", "deployed by hand in the maintenance window")
        page.click("form[action$='/sign-off/'] button")
    else:
        if step.changes_target:
            page.fill("#confirm_target", target_name)
        page.click("#start-button")
    # The live section polls itself via htmx until the step has ended.
    page.wait_for_selector('#live[data-status="succeeded"]', timeout=180000)


def test_oncall_runs_the_whole_runbook_in_the_browser(transactional_db, live_server, page, cast, demo_target,
                                                      artifacts_dir):
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/runs/new/")
    page.select_option("#id_target", label=demo_target.name)
    page.click("#create-run")
    page.wait_for_selector("h1:has-text('Run #')")
    run = Run.objects.latest("id")

    saw_live_log = False
    for index, step in enumerate(RUNBOOK.main_steps(), start=1):
        page.goto(f"{live_server.url}/runs/{run.pk}/steps/{step.key}/")
        finish_step(page, step, demo_target.name)
        log = page.inner_text("#live")
        saw_live_log |= "Attempt" in log and "started on" in log
        page.screenshot(path=str(artifacts_dir / f"runbook-{index:02d}-{step.key}.png"), full_page=True)

    page.goto(f"{live_server.url}/runs/{run.pk}/")
    statuses = page.eval_on_selector_all(
        "li[data-step]", "els => Object.fromEntries(els.map(e => [e.dataset.step, e.dataset.status]))")
    assert all(statuses[s.key] == "succeeded" for s in RUNBOOK.main_steps()), statuses
    assert saw_live_log
    page.screenshot(path=str(artifacts_dir / "runbook-done.png"), full_page=True)
    run.refresh_from_db()
    assert run.status == "completed"


def test_a_failed_step_shows_the_statement_and_the_runbooks_advice(transactional_db, live_server, page, cast,
                                                                    demo_target, artifacts_dir, tmp_path):
    import shutil

    from django.conf import settings

    from controlpanel.runs import engine
    from tests.runs.conftest import complete_prerequisites

    bundle = tmp_path / "bundle"
    shutil.copytree(settings.MIGRATION_BUNDLE_DIR, bundle, ignore=shutil.ignore_patterns("baseline"))
    broken = bundle / "20250904000001_add_multi_tenant_organizations.sql"
    broken.write_text(broken.read_text().replace("public.audit_reports", "public.audit_reportz", 1))
    run = engine.create_run(demo_target, cast["alice"], bundle_dir=bundle)
    complete_prerequisites(run, cast["alice"])

    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/runs/{run.pk}/steps/step1.schema/")
    page.fill("#confirm_target", "wrong-name")
    page.click("#start-button")
    assert "Type or confirm the target name" in page.inner_text(".messages")
    page.fill("#confirm_target", demo_target.name)
    page.click("#start-button")
    page.wait_for_selector('#live[data-status="failed"]', timeout=120000)
    error = page.inner_text("#step-error")
    assert "audit_reportz" in error and broken.name in error
    assert "Runbook troubleshooting" in error
    page.screenshot(path=str(artifacts_dir / "step-failed.png"), full_page=True)
