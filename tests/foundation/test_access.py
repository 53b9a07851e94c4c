"""Every page needs a login; each view checks its role; support can change nothing."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {"health", "login"}


def walk(patterns, prefix="", namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin" or str(p.pattern).startswith("admin/"):
                continue
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), f"{namespace}{p.name}"


def concrete(route: str) -> str:
    """Fill route converters with plausible values."""
    import re

    route = re.sub(r"<int:[^>]+>", "1", route)
    route = re.sub(r"<(slug|str):[^>]+>", "demo", route)
    route = re.sub(r"<[^>]+>", "x", route)
    return "/" + route.lstrip("^").rstrip("$")


def all_routes():
    return [(concrete(route), name) for route, name in walk(get_resolver().url_patterns)]


@pytest.mark.django_db
def test_every_url_requires_login(client):
    routes = all_routes()
    assert len(routes) > 10
    for url, name in routes:
        if name in PUBLIC:
            continue
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code in (302, 405), (url, response.status_code)
            if response.status_code == 302:
                assert "/login/" in response["Location"], url


@pytest.mark.django_db
def test_support_can_change_nothing(client, cast):
    """Every POST endpoint refuses the support role (403), except logging out."""
    client.force_login(cast["sam"])
    for url, name in all_routes():
        if name in PUBLIC or name == "logout" or name.startswith("support:"):
            continue
        response = client.post(url)
        assert response.status_code in (403, 404, 405), (url, response.status_code)


@pytest.mark.django_db
def test_a_user_without_role_sees_no_operational_page(client, cast):
    client.force_login(cast["nora"])
    for url in ("/runs/", "/runs/new/", "/targets/"):
        assert client.get(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("who,runs,new_run", [("alice", 200, 200), ("lena", 200, 200), ("sam", 403, 403)])
def test_role_checks_on_run_pages(client, cast, who, runs, new_run):
    client.force_login(cast[who])
    assert client.get("/runs/").status_code == runs
    assert client.get("/runs/new/").status_code == new_run


@pytest.mark.django_db
def test_only_leads_can_override_a_gate(client, cast, target_factory):
    from controlpanel.runs import engine
    from controlpanel.runs.models import GateOverride

    prod = target_factory(environment="production")
    run = engine.create_run(prod, cast["alice"])
    client.force_login(cast["alice"])
    data = {"gate": "staging", "reason": "staging is down, same checksums rehearsed"}
    assert client.post(f"/runs/{run.pk}/override/", data).status_code == 403
    client.force_login(cast["lena"])
    assert client.post(f"/runs/{run.pk}/override/", data).status_code == 302
    assert GateOverride.objects.get(run=run).lead == cast["lena"]


@pytest.mark.django_db
def test_support_cannot_start_a_step(client, cast, demo_target):
    from controlpanel.runs import engine

    run = engine.create_run(demo_target, cast["alice"])
    client.force_login(cast["sam"])
    response = client.post(f"/runs/{run.pk}/steps/pre.assessment/start/", {"confirm_target": "demo"})
    assert response.status_code == 403
    assert not run.steps.get(key="pre.assessment").attempts.exists()


@pytest.mark.django_db
def test_csrf_is_enforced(cast):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["alice"])
    assert client.post("/runs/new/", {}).status_code == 403


@pytest.mark.django_db
def test_the_audit_log_cannot_be_edited(cast):
    from django.db import transaction
    from django.db.utils import DatabaseError

    from controlpanel.core import audit
    from controlpanel.core.models import AuditEvent

    event = audit.record("test.action", user=cast["alice"], note="kept")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.action"
