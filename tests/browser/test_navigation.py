"""Each role logs in through a real chromium and sees its own navigation."""

import pytest

from tests.conftest import login

pytestmark = pytest.mark.browser

EXPECTED = {
    "alice": ({"runs", "targets"}, {"admin"}),
    "lena": ({"runs", "targets", "admin"}, set()),
    "sam": (set(), {"runs", "targets", "admin"}),
}


@pytest.mark.parametrize("username", ["alice", "lena", "sam"])
def test_each_role_sees_its_navigation(transactional_db, live_server, page, cast, artifacts_dir, username):
    if username == "lena":
        cast["lena"].is_staff = True
        cast["lena"].save()
    login(page, live_server, username)
    nav = set(page.eval_on_selector_all("#main-nav a[data-nav]", "els => els.map(e => e.dataset.nav)"))
    present, absent = EXPECTED[username]
    assert present <= nav, nav
    assert not (absent & nav), nav
    page.screenshot(path=str(artifacts_dir / f"nav-{username}.png"))
