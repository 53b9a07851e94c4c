"""The cockpit's "Next step →" flow through the whole runbook, by keyboard only; the same pages at 390 px;
the focus ring; a second open run refused; errors inside the layout."""

import pytest

from controlpanel.runbook.definition import RUNBOOK, Kind
from controlpanel.runs import engine
from controlpanel.runs.models import Run
from tests.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]


def tab_to(page, selector, limit=120):
    """Press Tab until the focused element matches: proves a keyboard user reaches it (no mouse, no focus())."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("sel => !!document.activeElement && document.activeElement.matches(sel)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def focus_ring(page) -> dict:
    return page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor}; }""")


def contrast(rgb_a: str, rgb_b: str) -> float:
    def luminance(rgb):
        channels = [int(c) / 255 for c in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    high, low = sorted((luminance(rgb_a), luminance(rgb_b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def finish_by_keyboard(page, step, target_name):
    if step.kind == Kind.CHECKLIST:
        for item in step.items:
            if not item.verifier:
                tab_to(page, f'li[data-item="{item.key}"] button')
                page.keyboard.press("Enter")
                page.wait_for_selector(f'li[data-item="{item.key}"][data-ticked="yes"]')
                # After the post, focus is on the message it left (not lost at the top of the page).
                assert page.evaluate("() => document.activeElement.classList.contains('messages')")
        if any(item.verifier for item in step.items):
            tab_to(page, "#start-button")
            page.keyboard.press("Enter")
    elif step.kind == Kind.COMMAND:
        tab_to(page, "#signoff-note")
        page.keyboard.type("deployed by hand in the maintenance window")
        page.keyboard.press("Enter")
    else:
        if step.changes_target:
            tab_to(page, "#confirm_target")
            page.keyboard.type(target_name)
        tab_to(page, "#start-button")
        page.keyboard.press("Enter")
    page.wait_for_selector('#live[data-status="succeeded"]', timeout=180000)


def test_keyboard_only_next_flow_through_the_whole_runbook(transactional_db, live_server, page, cast, demo_target,
                                                           artifacts_dir):
    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/runs/new/")
    tab_to(page, "#id_target")
    page.keyboard.type(demo_target.name)
    tab_to(page, "#create-run")
    ring = focus_ring(page)
    assert ring["style"] == "solid" and ring["width"] >= 2
    assert contrast(ring["color"], "rgb(255, 255, 255)") >= 3 and contrast(ring["color"], "rgb(250, 250, 250)") >= 3
    page.keyboard.press("Enter")
    page.wait_for_selector("#cockpit")
    run = Run.objects.latest("id")
    assert "Next: " in page.inner_text("#run-state")

    steps = RUNBOOK.main_steps()
    for index, step in enumerate(steps, start=1):
        tab_to(page, "#next-step")
        assert step.title in page.inner_text("#next-step")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"h1:has-text('{step.title}')")
        if step.file:
            assert page.is_visible("#sql-preview") and page.is_visible("#lint-findings")
        finish_by_keyboard(page, step, demo_target.name)
        if step.kind == Kind.QUERY_REPORT:  # results as tables, not only log lines
            assert page.is_visible(f'#query-results table[data-query="{step.queries[0][0]}"] td')
        page.screenshot(path=str(artifacts_dir / f"walk-{index:02d}-{step.key}.png"), full_page=True)
        if index < len(steps):
            assert steps[index].title in page.inner_text("#next-step")  # "Next step →" appears after success
    assert not page.query_selector("#next-step")
    tab_to(page, f'#cockpit a[href="/runs/{run.pk}/"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#cockpit[data-tone='done']")
    assert "Completed" in page.inner_text("#run-state")
    page.screenshot(path=str(artifacts_dir / "walk-done.png"), full_page=True)
    run.refresh_from_db()
    assert run.status == "completed"


def test_pages_fit_390_px_and_a_second_open_run_is_refused(transactional_db, live_server, browser, cast, demo_target,
                                                            artifacts_dir):
    first = engine.create_run(demo_target, cast["alice"])
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        login(page, live_server, "alice")
        for path, name in ((f"/runs/{first.pk}/", "run"), (f"/runs/{first.pk}/steps/step1.schema/", "step"),
                           ("/runs/", "runs"), ("/", "home"), (f"/runs/{first.pk}/steps/nope/", "404")):
            page.goto(f"{live_server.url}{path}")
            assert no_sideways_scroll(page), path
            page.screenshot(path=str(artifacts_dir / f"narrow-{name}.png"), full_page=True)
        assert "Not found (404)" in page.inner_text("h1") and page.is_visible("#main-nav")

        page.goto(f"{live_server.url}/runs/new/")
        page.select_option("#id_target", label=demo_target.name)
        page.click("#create-run")
        message = page.inner_text(".messages")
        assert f"Run #{first.pk} is still open on {demo_target.name}" in message
        assert Run.objects.filter(target=demo_target).count() == 1

        context.clear_cookies()
        login(page, live_server, "sam")  # support may not create runs: a 403 inside the layout
        page.goto(f"{live_server.url}/runs/new/")
        assert "Not allowed (403)" in page.inner_text("h1") and page.is_visible("a:has-text('Home')")
    finally:
        context.close()
