"""Targets: the DSN is read from the environment at use and never rendered or logged."""

import logging
import os

import psycopg
import pytest

from controlpanel.targets import demo
from controlpanel.targets.checks import check_target
from controlpanel.targets.connection import TargetUnavailable, connect
from controlpanel.targets.models import Target
from controlpanel.targets.seeding import seed_target
from tests.helpers import targets as target_support

SECRET_DSN = "postgresql://postgres:s3cr3t-pw@127.0.0.1:5432/{db}"


@pytest.mark.django_db
def test_connection_check_sees_the_supabase_shape(demo_target):
    check = check_target(demo_target)
    assert check.reachable and check.supabase_shape, check.as_dict()
    assert check.server_version.startswith("15")
    assert check.roles == {"anon": False, "authenticated": False, "service_role": True}


@pytest.mark.django_db
def test_connection_check_names_what_is_missing(target_factory):
    target = target_factory()
    with psycopg.connect(os.environ[target.dsn_env_var], autocommit=True) as conn:
        conn.execute("DROP FUNCTION auth.uid() CASCADE")
    check = check_target(target)
    assert check.reachable and not check.supabase_shape
    assert check.missing == ["function auth.uid()"]


@pytest.mark.django_db
def test_missing_variable_is_a_clear_error(db):
    target = Target.objects.create(name="nowhere", environment="staging", dsn_env_var="CP_TEST_NOT_SET_ANYWHERE")
    with pytest.raises(TargetUnavailable, match="CP_TEST_NOT_SET_ANYWHERE is not set"):
        connect(target)


@pytest.mark.django_db
def test_dsn_never_appears_in_pages_or_logs(client, cast, caplog, monkeypatch):
    secret = SECRET_DSN.format(db="no_such_database_xyz")
    monkeypatch.setenv("CP_TEST_SECRET_DSN", secret)
    target = Target.objects.create(name="secretive", environment="staging", dsn_env_var="CP_TEST_SECRET_DSN")
    caplog.set_level(logging.DEBUG)
    from controlpanel.targets.checks import check_and_store

    result = check_and_store(target)
    assert not result.reachable
    client.force_login(cast["lena"])
    urls = ("/targets/", "/", f"/admin/targets/target/{target.pk}/change/")
    pages = [client.get(url).content.decode() for url in urls]
    for text in pages + [caplog.text, str(result.as_dict())]:
        assert "s3cr3t-pw" not in text
        assert secret not in text


def test_baseline_applies_cleanly_and_is_idempotent():
    dsn = target_support.dsn("cp_test_baseline_idem")
    target_support.drop(dsn)
    demo.create_database(dsn)
    try:
        demo.apply_baseline(dsn)
        with psycopg.connect(dsn) as conn:
            first = conn.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'").fetchone()[0]
        demo.apply_baseline(dsn)
        with psycopg.connect(dsn) as conn:
            second = conn.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'").fetchone()[0]
            uid = conn.execute("SELECT set_config('request.jwt.claims', '{\"sub\": "
                               "\"6a3f2b1c-0000-4000-8000-000000000001\"}', false), auth.uid()").fetchone()[1]
        assert first == second > 0
        assert str(uid) == "6a3f2b1c-0000-4000-8000-000000000001"
    finally:
        target_support.drop(dsn)


@pytest.mark.parametrize("users,reports", [(50, 400), (120, 1000)])
def test_seeder_produces_the_requested_counts(users, reports):
    dsn = target_support.dsn(f"cp_test_seed_{users}")
    target_support.drop(dsn)
    demo.create_database(dsn)
    try:
        demo.apply_baseline(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            seed_target(conn, users=users, reports=reports)
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM auth.users), (SELECT count(*) FROM public.profiles), "
                "(SELECT count(*) FROM public.audit_reports), (SELECT count(*) FROM public.automation_jobs), "
                "(SELECT count(DISTINCT user_id) FROM public.audit_reports)"
            ).fetchone()
        assert counts[0] == users and counts[1] == users and counts[2] == reports
        assert 0 < counts[3] < reports  # proportional jobs
        assert counts[4] > users // 2  # reports spread over many users
    finally:
        target_support.drop(dsn)
