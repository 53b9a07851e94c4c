"""Support looks a person up by email in a real chromium; the real worker answers, htmx shows the result."""

import os

import psycopg
import pytest

from tests.conftest import login

pytestmark = pytest.mark.browser


def test_support_looks_up_a_person_by_email(transactional_db, live_server, celery_worker, page, cast, org_target,
                                            artifacts_dir):
    with psycopg.connect(os.environ[org_target.dsn_env_var], autocommit=True) as conn:
        email, memberships = conn.execute(
            "SELECT u.email, count(*) FROM auth.users u JOIN public.organization_memberships m ON m.user_id = u.id "
            "GROUP BY u.email HAVING count(*) = 2 ORDER BY u.email LIMIT 1").fetchone()
    login(page, live_server, "sam")
    page.click('#main-nav a[data-nav="lookup"]')
    page.select_option("#id_target", str(org_target.pk))
    page.check('input[name="kind"][value="person"]')
    page.fill("#id_query", email)
    page.click("button:has-text('Look up')")
    page.wait_for_selector('#lookup-result[data-status="done"]', timeout=20000)
    assert page.inner_text("[data-email]") == email
    assert page.locator("tr[data-org]").count() == memberships
    assert os.environ[org_target.dsn_env_var] not in page.content()
    page.screenshot(path=str(artifacts_dir / "support-lookup-by-email.png"), full_page=True)
