"""Support's pages: only LOOKUP_MEMBERSHIPS; a lookup is a task whose stored result the page polls."""

import csv
import io
import os
from datetime import timedelta

import psycopg
import pytest
from django.urls import reverse
from django.utils import timezone

from controlpanel.core.models import AuditEvent
from controlpanel.support.models import LookupResult
from controlpanel.support.tasks import run_lookup


def first_email(target):
    with psycopg.connect(os.environ[target.dsn_env_var], autocommit=True) as conn:
        return conn.execute("SELECT email FROM auth.users ORDER BY email LIMIT 1").fetchone()[0]


def ask(client, django_capture_on_commit_callbacks, **data):
    """POST the form; the task is dispatched after commit (captured here) and run inline."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("support:lookup"), data)
    assert response.status_code == 302 and len(callbacks) == 1
    lookup = LookupResult.objects.latest("pk")
    run_lookup(lookup.pk)
    return lookup, response["Location"]


@pytest.mark.parametrize("username, status", [("sam", 200), ("lena", 200), ("alice", 403), ("nora", 403)])
def test_lookup_page_permissions(client, cast, username, status):
    client.force_login(cast[username])
    assert client.get(reverse("support:lookup")).status_code == status


def test_support_sees_only_the_lookup_pages(client, cast):
    client.force_login(cast["sam"])
    for url in (reverse("runs:list"), reverse("targets:list"), reverse("leads:history"), reverse("leads:audit")):
        assert client.get(url).status_code == 403, url


def test_lookup_by_email_through_the_page(client, cast, org_target, django_capture_on_commit_callbacks):
    email = first_email(org_target)
    client.force_login(cast["sam"])
    lookup, location = ask(client, django_capture_on_commit_callbacks, target=org_target.pk, kind="person",
                           query=email)
    assert location == reverse("support:result", args=[lookup.pk])
    html = client.get(location).content.decode()
    assert email in html and 'data-status="done"' in html and "data-org=" in html
    assert "hx-get" not in html  # done: no more polling
    assert AuditEvent.objects.filter(action="support.lookup", username="sam", detail__query=email).exists()
    assert os.environ[org_target.dsn_env_var] not in html


def test_pending_result_polls_with_htmx(client, cast, org_target, django_capture_on_commit_callbacks):
    client.force_login(cast["sam"])
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("support:lookup"), {"target": org_target.pk, "kind": "person", "query": "a@b.c"})
    lookup = LookupResult.objects.latest("pk")
    html = client.get(reverse("support:result", args=[lookup.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="pending"' in html and "hx-get" in html and "<html" not in html


def test_someone_elses_lookup_is_not_visible(client, cast, org_target, django_capture_on_commit_callbacks):
    client.force_login(cast["sam"])
    lookup, location = ask(client, django_capture_on_commit_callbacks, target=org_target.pk, kind="person",
                           query="a@b.c")
    client.force_login(cast["lena"])
    assert client.get(location).status_code == 404


def test_query_is_required_except_for_the_orphan_list(client, cast, org_target):
    client.force_login(cast["sam"])
    response = client.post(reverse("support:lookup"), {"target": org_target.pk, "kind": "person", "query": ""})
    assert response.status_code == 200 and not LookupResult.objects.exists()


def test_users_without_membership_count_page_and_csv(client, cast, org_target, django_capture_on_commit_callbacks):
    with psycopg.connect(os.environ[org_target.dsn_env_var], autocommit=True) as conn:
        removed = {str(r[0]) for r in conn.execute(
            "DELETE FROM public.organization_memberships WHERE user_id IN (SELECT id FROM auth.users ORDER BY id "
            "LIMIT 60) RETURNING user_id").fetchall()}
    client.force_login(cast["sam"])
    lookup, location = ask(client, django_capture_on_commit_callbacks, target=org_target.pk,
                           kind="without_membership")
    html = client.get(location).content.decode()
    assert "<strong>60</strong> users without organization membership" in html
    assert "page 1 of 2" in html
    response = client.get(reverse("support:export", args=[lookup.pk]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["user_id"] for r in rows} == removed and set(rows[0]) == {"user_id", "email", "created_at"}


def test_expired_results_are_purged(cast, org_target):
    old = LookupResult.objects.create(requester=cast["sam"], target=org_target, kind="person", query="x",
                                      created_at=timezone.now() - timedelta(hours=2))
    LookupResult.purge_expired()
    assert not LookupResult.objects.filter(pk=old.pk).exists()
