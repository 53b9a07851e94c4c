"""The run page shared by its viewers (runs.views.run_page_body): one render per run state and viewer kind,
each viewer's own CSRF token, and a state change shown at once."""

import re

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from controlpanel.core import roles
from controlpanel.runs import engine

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def shared_page(settings):
    settings.SHARED_RENDER_SECONDS = 60
    cache.clear()
    yield
    cache.clear()


def viewer(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_viewers_share_one_render_and_each_posts_with_their_own_token(db, shared_page, cast, demo_target):
    alice = cast["alice"]
    bob = User.objects.create_user("bob", password="bob-pass-123")
    bob.groups.add(roles.ensure_roles()[roles.ONCALL])
    run = engine.create_run(demo_target, alice)
    url = f"/runs/{run.pk}/"
    first, second = viewer(alice), viewer(User.objects.get(pk=bob.pk))
    with CaptureQueriesContext(connection) as rendered:
        page_a = first.get(url).content.decode()
    with CaptureQueriesContext(connection) as shared:
        page_b = second.get(url).content.decode()
    assert len(shared) < len(rendered) / 2, (len(shared), len(rendered))  # the second viewer did not re-render
    assert "__run_page_csrf__" not in page_a + page_b
    token_a, token_b = TOKEN.search(page_a).group(1), TOKEN.search(page_b).group(1)
    assert token_a != token_b
    # The first viewer's token is no good in the second's session: each page carries its own.
    refused = second.post(f"/runs/{run.pk}/abandon/", {"reason": "x", "csrfmiddlewaretoken": token_a})
    assert refused.status_code == 403
    done = second.post(f"/runs/{run.pk}/abandon/", {"reason": "window closed", "csrfmiddlewaretoken": token_b})
    assert done.status_code == 302
    # A changed run state is a new render at once, for the viewer who acted and for the one who did not.
    assert "Abandoned" in second.get(url).content.decode()
    assert "Abandoned" in first.get(url).content.decode()


def test_leads_do_not_share_their_page(db, shared_page, cast, demo_target):
    """A lead's page carries controls about their own requests (no self-approval): never served to another lead."""
    lena = cast["lena"]
    other = User.objects.create_user("olga", password="olga-pass-123")
    other.groups.add(roles.ensure_roles()[roles.LEAD])
    run = engine.create_run(demo_target, cast["alice"])
    url = f"/runs/{run.pk}/"
    lena_page, other_page, lena_again = viewer(lena), viewer(User.objects.get(pk=other.pk)), viewer(lena)
    lena_page.get(url)
    with CaptureQueriesContext(connection) as second:
        other_page.get(url)
    with CaptureQueriesContext(connection) as again:
        lena_again.get(url)
    assert len(again) < len(second) / 2, (len(again), len(second))


def test_a_running_steps_live_fragment_is_shared_until_the_next_heartbeat(db, shared_page, cast, demo_target):
    from django.utils import timezone

    from controlpanel.runs.models import Attempt, StepRun

    alice = cast["alice"]
    bob = User.objects.create_user("bob", password="bob-pass-123")
    bob.groups.add(roles.ensure_roles()[roles.ONCALL])
    run = engine.create_run(demo_target, alice)
    step = StepRun.objects.get(run=run, key="step1.data")
    StepRun.objects.filter(pk=step.pk).update(status="running", started_at=timezone.now())
    attempt = Attempt.objects.create(step=step, number=1, requested_by=alice, status="running",
                                     started_at=timezone.now(), heartbeat_at=timezone.now(),
                                     progress={"backfill": {"rows_done": 1010, "rows_total": 9090, "rate": 1.0}})
    url = f"/runs/{run.pk}/steps/step1.data/live/"
    first, second = viewer(alice), viewer(User.objects.get(pk=bob.pk))
    page_a = first.get(url).content.decode()
    Attempt.objects.filter(pk=attempt.pk).update(progress={"backfill": {"rows_done": 5050, "rows_total": 9090,
                                                                        "rate": 1.0}})
    page_b = second.get(url).content.decode()  # the same heartbeat: the shared rendering
    assert "1010 / 9090" in page_a and "1010 / 9090" in page_b
    assert TOKEN.search(page_a).group(1) != TOKEN.search(page_b).group(1)
    Attempt.objects.filter(pk=attempt.pk).update(heartbeat_at=timezone.now())  # the next beat: rendered anew
    assert "5050 / 9090" in second.get(url).content.decode()
