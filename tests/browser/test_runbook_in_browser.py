"""A failed step in chromium: the statement, the file and the runbook's advice (the whole walk by keyboard is in
test_cockpit_walk.py)."""

import pytest

from controlpanel.runbook.definition import Kind
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
