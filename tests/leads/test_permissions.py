"""Who sees which leads page and export: leads yes; support, on-call and nobody no."""

import pytest
from django.urls import reverse

PAGES = [
    ("leads:history", False),
    ("leads:timeline", True),
    ("leads:compare", False),
    ("leads:audit", False),
    ("leads:audit_export", False),
]
EXPORTS = ["md", "json", "csv"]


def urls(run):
    out = [reverse(name, args=[run.pk]) if needs_run else reverse(name) for name, needs_run in PAGES]
    out += [reverse("leads:export", args=[run.pk, fmt]) for fmt in EXPORTS]
    return out


@pytest.mark.parametrize("username", ["sam", "alice", "nora"])
def test_non_leads_cannot_see_leads_pages(client, cast, finished_run, username):
    client.force_login(cast[username])
    for url in urls(finished_run):
        assert client.get(url).status_code == 403, url


def test_lead_sees_every_page_and_export(client, cast, finished_run):
    client.force_login(cast["lena"])
    for url in urls(finished_run):
        response = client.get(url)
        assert response.status_code == 200, url


def test_anonymous_is_sent_to_login(client, finished_run):
    response = client.get(reverse("leads:history"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_unknown_export_format_is_404(client, cast, finished_run):
    client.force_login(cast["lena"])
    assert client.get(reverse("leads:export", args=[finished_run.pk, "xml"])).status_code == 404


def test_nav_shows_history_and_audit_to_leads_only(client, cast):
    client.force_login(cast["lena"])
    html = client.get(reverse("home")).content.decode()
    assert 'data-nav="history"' in html and 'data-nav="audit"' in html and 'data-nav="lookup"' in html
    client.force_login(cast["sam"])
    html = client.get(reverse("home"), follow=True).content.decode()  # support's home opens on the lookup
    assert 'data-nav="history"' not in html and 'data-nav="audit"' not in html and 'data-nav="lookup"' in html
    client.force_login(cast["alice"])
    html = client.get(reverse("home")).content.decode()
    assert 'data-nav="history"' not in html and 'data-nav="lookup"' not in html


@pytest.mark.parametrize("username", ["alice", "sam", "nora"])
def test_only_leads_may_decide_approvals(client, cast, make_target, username):
    from controlpanel.leads import approvals
    from controlpanel.leads.models import Approval
    from controlpanel.runs import engine

    run = engine.create_run(make_target("prod-p", "production"), cast["alice"])
    approval = approvals.request_approval(run, Approval.Action.STEP1, cast["alice"])
    client.force_login(cast[username])
    response = client.post(reverse("leads:approval_decide", args=[approval.pk]),
                           {"decision": "approve", "digest": run.checksum_digest, "reason": "looks fine"})
    assert response.status_code == 403
    approval.refresh_from_db()
    assert approval.decision == Approval.Decision.PENDING
