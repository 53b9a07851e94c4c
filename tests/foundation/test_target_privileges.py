"""The connection check reports the privileges the panel's role has against those it needs."""

import pytest

from controlpanel.targets.checks import check_target
from tests.helpers.platform import as_admin, login_role, migrator


@pytest.mark.django_db
def test_a_superuser_has_everything(demo_target):
    check = check_target(demo_target)
    assert check.superuser is True and check.missing_privileges == [] and check.degraded == []


@pytest.mark.django_db
def test_the_platform_role_has_what_it_needs_and_is_told_what_degrades(platform_target):
    check = check_target(platform_target)
    assert (check.role, check.superuser) == (migrator(platform_target), False)
    assert check.missing_privileges == [], check.privileges
    assert any(d.startswith("pg_read_all_stats: ") and "query hidden" in d for d in check.degraded), check.degraded


@pytest.mark.django_db
def test_a_role_without_createrole_or_the_api_roles_is_named(platform_target, monkeypatch):
    with login_role(platform_target, monkeypatch, attributes="NOSUPERUSER BYPASSRLS CREATEDB",
                    member_of=("anon", "authenticated")) as role:
        as_admin(platform_target, f"GRANT USAGE ON SCHEMA auth TO {role}; GRANT SELECT ON auth.users TO {role}")
        check = check_target(platform_target)
    names = [m.split(" (")[0] for m in check.missing_privileges]
    assert names == ["member of service_role", "CREATEROLE"], check.missing_privileges


@pytest.mark.django_db
def test_the_targets_page_shows_the_privileges(client, cast, platform_target):
    from controlpanel.targets.checks import check_and_store

    check_and_store(platform_target)
    client.force_login(cast["lena"])
    page = client.get("/targets/").content.decode()
    assert f"as <code>{migrator(platform_target)}</code>" in page
    assert "✔ all required" in page and "data-degraded" in page
