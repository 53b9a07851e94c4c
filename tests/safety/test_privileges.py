"""Preflight checks the privileges every statement of the forward and rollback files needs."""

from pathlib import Path

from controlpanel.safety.preflight import run_preflight
from tests.support.platform import as_admin, auth_owner, login_role, migrator

from .conftest import edit, query


def _no_go(report):
    return [c for c in report["checks"] if c["status"] == "no-go"]


def test_a_rollback_that_drops_a_trigger_on_auth_users_is_no_go_without_ownership(platform_target):
    MIGRATOR, AUTH_OWNER = migrator(platform_target), auth_owner(platform_target)
    assert query(platform_target, "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user") == [
        (MIGRATOR, False)]
    report = run_preflight(platform_target)
    assert report["go"] is False
    blocking = [c for c in _no_go(report) if c["key"].startswith("privileges.")]
    auth_users = [c for c in blocking if c["detail"]["object"] == "auth.users"]
    assert auth_users, blocking
    line = auth_users[0]["detail"]
    assert line["file"] == "rollback-multi-tenant-organizations.sql"
    assert line["statement"].startswith("DROP TRIGGER") and "ON auth.users" in line["statement"]
    rollback = (Path(report["bundle_dir"]) / "rollback-multi-tenant-organizations.sql").read_text().splitlines()
    assert "DROP TRIGGER" in rollback[line["line"] - 1] and "auth.users" in rollback[line["line"] - 1]
    assert f"rollback-multi-tenant-organizations.sql line {line['line']}" in auth_users[0]["evidence"]
    assert f"owned by {AUTH_OWNER}, not by {MIGRATOR}" in auth_users[0]["evidence"]
    # Nothing else is missing: public is the role's own, and it may create the trigger (TRIGGER privilege).
    assert {c["detail"]["object"] for c in blocking} == {"auth.users"}, blocking


def test_the_same_bundle_is_go_as_superuser_on_baseline(demo_target):
    report = run_preflight(demo_target)
    privileges = [c for c in report["checks"] if c["key"].startswith("privileges")]
    assert [c["status"] for c in privileges] == ["go"], privileges
    assert "(superuser)" in privileges[0]["evidence"]


def test_a_table_the_role_does_not_own_is_named_with_its_owner(platform_target, bundle_copy):
    as_admin(platform_target, f"ALTER TABLE public.automation_jobs OWNER TO {auth_owner(platform_target)}")
    # no IF EXISTS drop of the auth trigger: only the table is left to find
    edit(bundle_copy / "rollback-multi-tenant-organizations.sql",
         "DROP TRIGGER IF EXISTS on_auth_user_created_add_membership ON auth.users;", "")
    report = run_preflight(platform_target, bundle_copy)
    blocking = [c for c in _no_go(report) if c["key"].startswith("privileges.")]
    objects = {(c["detail"]["file"], c["detail"]["object"]) for c in blocking}
    assert ("20250904000001_add_multi_tenant_organizations.sql", "public.automation_jobs") in objects
    assert ("rollback-multi-tenant-organizations.sql", "public.automation_jobs") in objects
    assert {o for _, o in objects} == {"public.automation_jobs"}, objects


def test_a_role_that_cannot_set_role_to_the_api_roles_is_no_go(platform_target, monkeypatch):
    with login_role(platform_target, monkeypatch, member_of=("anon", "service_role")):
        report = run_preflight(platform_target)
    panel = [c for c in _no_go(report) if c["key"] == "privileges.panel"]
    assert any("membership in role authenticated" in c["evidence"] for c in panel), panel
