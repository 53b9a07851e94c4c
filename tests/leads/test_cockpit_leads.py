"""Leads' cockpit: an approvals inbox on the home page with a notification, Compare that highlights differences and
refuses nonsense pairs, the timeline as a compact SVG."""

import pytest
from django.core import mail
from django.urls import reverse

from controlpanel.leads import approvals
from controlpanel.runs import engine

pytestmark = pytest.mark.django_db


def test_a_request_reaches_the_leads_home_page_and_their_mail(client, cast, make_target, settings):
    settings.NOTIFY_EMAILS = ["leads@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    run = engine.create_run(make_target("prod-inbox", "production"), cast["alice"])
    client.force_login(cast["lena"])
    assert "Nothing is waiting for a decision" in client.get("/").content.decode()

    approval = approvals.request_approval(run, "step1", cast["alice"], note="window 02:00-04:00")
    page = client.get("/").content.decode()
    assert f'data-approval="{approval.pk}"' in page and "prod-inbox" in page
    assert len(mail.outbox) == 1 and "Approval requested" in mail.outbox[0].subject
    assert "window 02:00-04:00" in mail.outbox[0].body

    client.force_login(cast["alice"])  # on-call: no inbox
    assert 'id="approvals-inbox"' not in client.get("/").content.decode()


@pytest.mark.parametrize("a, b, says", [
    ("abc", "1", "must be a run number"),
    ("{a}", "999999", "There is no run #999999"),
    ("{a}", "{a}", "the same run"),
    ("{a}", "", "Choose run B"),
])
def test_compare_refuses_nonsense_pairs_clearly(client, cast, finished_run, a, b, says):
    client.force_login(cast["lena"])
    pair = {"a": a.format(a=finished_run.pk), "b": b.format(a=finished_run.pk)}
    response = client.get(reverse("leads:compare"), pair)
    assert response.status_code == 400
    body = response.content.decode()
    assert says in body and 'id="compare-problems"' in body and 'id="run-a"' in body  # the form is still there


def test_compare_marks_what_differs(client, cast, make_target, finished_run, fake_scorecard):
    from tests.leads.conftest import finish_step

    prod = engine.create_run(make_target("prod-diff", "production"), cast["alice"])
    finish_step(prod, "pre.assessment", cast["alice"], seconds=300)
    client.force_login(cast["lena"])
    response = client.get(reverse("leads:compare"), {"a": finished_run.pk, "b": prod.pk})
    steps = {s["def"].key: s for s in response.context["comparison"]["steps"]}
    assert steps["pre.assessment"]["time_differs"] and not steps["pre.assessment"]["status_differs"]
    assert steps["step1.schema"]["status_differs"]  # succeeded in A, pending in B
    body = response.content.decode()
    assert 'data-step="step1.schema" class="differs"' in body


def test_the_timeline_is_a_compact_svg(client, cast, finished_run):
    client.force_login(cast["lena"])
    body = client.get(reverse("leads:timeline", args=[finished_run.pk])).content.decode()
    assert '<svg class="gantt"' in body and "<rect" in body and 'role="img"' in body
