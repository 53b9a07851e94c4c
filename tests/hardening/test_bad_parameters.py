"""Hostile parameters get a 4xx, never a 500, on every URL (GET query strings and POST bodies)."""

import pytest
from django.test import Client

from tests.foundation.test_access import all_routes

# One hostile value at a time, so that the others cannot make a form invalid before the bad one is read.
HOSTILE = [
    ("page", "2147483648"), ("page", "abc"), ("until", "9999-12-31"), ("since", "0001-01-01"),
    ("run", "abc"), ("run", "2147483648"), ("target", "x\x00y"), ("q", "x\x00y"), ("step", "x\x00y"),
    ("person", "x\x00y"), ("hours", "99999999999999999999"), ("kind", "x\x00y"), ("report", "9" * 30),
]


@pytest.fixture
def admin_like(db, cast, paper_target):
    """A lead who is also a superuser reaches every page; a run and a target exist so ids resolve."""
    from controlpanel.runs import engine

    lena = cast["lena"]
    lena.is_staff = lena.is_superuser = True
    lena.save()
    engine.create_run(paper_target, cast["alice"])
    return lena


def test_every_url_answers_hostile_parameters_without_a_server_error(admin_like, paper_target):
    from controlpanel.runs.models import Run

    run_id = Run.objects.get().pk
    client = Client(raise_request_exception=False)
    client.force_login(admin_like)
    failures = []
    for route, name in all_routes():
        if name == "logout":
            continue
        url = route.replace("/1/", f"/{run_id}/")
        for field, value in HOSTILE:
            for method in ("get", "post"):
                response = getattr(client, method)(url, {field: value})
                if response.status_code == 500:
                    failures.append((method, url, field, value))
    assert not failures, failures


def test_a_huge_page_number_in_a_lookup_is_refused_not_a_server_error(db, cast, paper_target):
    client = Client(raise_request_exception=False)
    client.force_login(cast["sam"])
    response = client.post("/support/", {"target": paper_target.pk, "kind": "without_membership",
                                         "page": "2147483648"})
    assert response.status_code in (200, 400)  # the form shows the error
    from controlpanel.support.models import LookupResult

    assert not LookupResult.objects.exists()
