"""Preflight checks the privileges every statement of the forward and rollback files needs."""


from controlpanel.safety.preflight import run_preflight
from tests.helpers.platform import as_admin, auth_owner, login_role, migrator

from .conftest import AUTH_TRIGGER_DROP, ROLLBACK_FILE, add_auth_users_trigger, query


def _no_go(report):
    return [c for c in report["checks"] if c["status"] == "no-go"]


def test_a_rollback_that_drops_a_trigger_on_auth_users_is_no_go_without_ownership(platform_target, bundle_copy):
    MIGRATOR, AUTH_OWNER = migrator(platform_target), auth_owner(platform_target)
    assert query(platform_target, "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user") == [
        (MIGRATOR, False)]
    line = add_auth_users_trigger(bundle_copy)
    report = run_preflight(platform_target, bundle_copy)
    assert report["go"] is False
    blocking = [c for c in _no_go(report) if c["key"].startswith("privileges.")]
    ours = [c for c in blocking if c["detail"]["line"] == line]
    assert len(ours) == 1, blocking
    detail = ours[0]["detail"]
    assert (detail["file"], detail["object"], detail["statement"]) == (ROLLBACK_FILE, "auth.users",
                                                                       AUTH_TRIGGER_DROP.rstrip(";"))
    assert ours[0]["evidence"].startswith(f"{ROLLBACK_FILE} line {line}: `{AUTH_TRIGGER_DROP.rstrip(';')}`")
    assert f"owned by {AUTH_OWNER}, not by {MIGRATOR}" in ours[0]["evidence"]
    # Nothing else is missing: public is the role's own, and it may create the trigger (TRIGGER privilege).
    assert {c["detail"]["object"] for c in blocking} == {"auth.users"}, blocking
    stats = next(c for c in report["checks"] if c["key"] == "privileges.stats")
    assert stats["status"] == "warn" and "sees only its own sessions" in stats["evidence"]


def test_the_same_bundle_is_go_as_superuser_on_baseline(demo_target, bundle_copy):
    add_auth_users_trigger(bundle_copy)
    report = run_preflight(demo_target, bundle_copy)
    privileges = [c for c in report["checks"] if c["key"].startswith("privileges")]
    assert [c["status"] for c in privileges] == ["go"], privileges
    assert "(superuser)" in privileges[0]["evidence"]


def test_a_table_the_role_does_not_own_is_named_with_its_owner(platform_target, bundle_copy):
    as_admin(platform_target, f"ALTER TABLE public.automation_jobs OWNER TO {auth_owner(platform_target)}")
    report = run_preflight(platform_target, bundle_copy)
    blocking = [c for c in _no_go(report) if c["key"].startswith("privileges.")]
    objects = {(c["detail"]["file"], c["detail"]["object"]) for c in blocking}
    assert ("20250904000001_add_multi_tenant_organizations.sql", "public.automation_jobs") in objects
    assert ("rollback-multi-tenant-organizations.sql", "public.automation_jobs") in objects
    # (today's bundle also drops a trigger on auth.users: that one is found too)
    assert {o for _, o in objects} - {"auth.users"} == {"public.automation_jobs"}, objects


def test_a_role_that_cannot_set_role_to_the_api_roles_is_no_go(platform_target, monkeypatch):
    with login_role(platform_target, monkeypatch, member_of=("anon", "service_role")):
        report = run_preflight(platform_target)
    panel = [c for c in _no_go(report) if c["key"] == "privileges.panel"]
    assert any("membership in role authenticated" in c["evidence"] for c in panel), panel
