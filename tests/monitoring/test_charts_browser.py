"""The target health page in chromium: every chart drawn from the stored checks, with a table view."""

import pytest

from controlpanel.monitoring.checks import check_and_store
from controlpanel.monitoring.models import HealthCheck
from controlpanel.monitoring.queries import TOP_ORGANIZATIONS
from tests.conftest import login

from .conftest import ALL_ORGANIZATIONS

pytestmark = pytest.mark.browser


def count(page, selector):
    return page.eval_on_selector_all(selector, "els => els.length")


def test_the_health_page_draws_every_chart_from_the_stored_checks(transactional_db, live_server, page, cast,
                                                                 migrated_target, artifacts_dir):
    HealthCheck.objects.create(target=migrated_target, figures={"migrated": False, "database_bytes": 9_000_000,
                                                                "message": "Not migrated yet"})
    for _ in range(3):
        check_and_store(migrated_target)
    migrated = HealthCheck.objects.filter(target=migrated_target, figures__migrated=True)
    latest = migrated.order_by("-checked_at").first()
    assert migrated.count() == 3

    login(page, live_server, "alice")
    page.goto(f"{live_server.url}/monitoring/targets/{migrated_target.name}/")
    page.wait_for_selector('svg[data-chart="organizations"]')

    # One marker per check and series: organizations + active memberships, member + service role latency.
    assert count(page, 'svg[data-chart="organizations"] [data-point]') == 2 * migrated.count()
    assert count(page, 'svg[data-chart="organizations"] [data-point][data-series="Organizations"]') == 3
    values = page.eval_on_selector_all('svg[data-chart="organizations"] [data-series="Organizations"]',
                                       "els => els.map(e => Number(e.dataset.value))")
    assert values == [ALL_ORGANIZATIONS] * 3
    assert count(page, 'svg[data-chart="latency"] [data-point]') == 2 * migrated.count()
    assert count(page, 'svg[data-chart="latency"] [data-reference="SLA 500 ms"]') == 1
    # Size: every check (the pre-migration one too), with the pre-migration line and the 10 % budget.
    assert count(page, 'svg[data-chart="size"] [data-point]') == HealthCheck.objects.filter(
        target=migrated_target).count() == 4
    assert count(page, 'svg[data-chart="size"] [data-reference]') == 2
    # Bars from the latest check: reports and jobs of each organization, scans of each organization index.
    top = min(TOP_ORGANIZATIONS, ALL_ORGANIZATIONS)
    assert count(page, 'svg[data-chart="top_organizations"] rect[data-bar]') == 2 * top
    assert count(page, 'svg[data-chart="indexes"] rect[data-bar]') == len(latest.figures["indexes"])
    hist = page.eval_on_selector_all('svg[data-chart="distribution"] rect[data-bar]',
                                     "els => els.reduce((n, e) => n + Number(e.dataset.value), 0)")
    assert hist == ALL_ORGANIZATIONS

    # Accessible: each chart is an image with a title, and has a table view with one row per point/category.
    for key in ("organizations", "latency", "size", "top_organizations", "distribution", "indexes"):
        svg = page.locator(f'svg[data-chart="{key}"]')
        assert svg.get_attribute("role") == "img"
        assert page.locator(f"#{key}-t").count() == 1
    page.click('#chart-organizations details summary')
    assert count(page, "#chart-organizations details table tbody tr") == 3
    assert count(page, "#chart-size details table tbody tr") == 4
    assert count(page, "table[data-history] tbody tr[data-check]") == 4
    page.screenshot(path=str(artifacts_dir / "monitoring-target-health.png"), full_page=True)

    page.goto(f"{live_server.url}/monitoring/")
    assert page.locator(f"tr:has-text('{migrated_target.name}') [data-state]").count() == 1
