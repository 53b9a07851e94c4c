"""Rehearsal copies made by the migration role itself, with production's owners and grants."""

import psycopg
import pytest
from django.test import override_settings

from controlpanel.safety import copies
from controlpanel.safety.copies import CopyFailed, DisposableCopy
from controlpanel.safety.rehearsal import rehearse
from tests.helpers.platform import auth_owner, migrator

from .conftest import add_auth_users_trigger, query

ROLLBACK = "rollback-multi-tenant-organizations.sql"


def _owner_and_grants(target, relation):
    return query(target, "SELECT pg_get_userbyid(relowner), pg_has_role(relowner, 'USAGE'), "
                         "has_table_privilege(oid, 'TRIGGER'), has_table_privilege('anon', oid, 'SELECT'), "
                         "has_table_privilege('authenticated', oid, 'INSERT') FROM pg_class WHERE oid = %s::regclass",
                 (relation,))[0]


def test_the_copy_keeps_auth_out_of_the_migration_roles_hands(platform_target):
    MIGRATOR, AUTH_OWNER = migrator(platform_target), auth_owner(platform_target)
    with DisposableCopy(platform_target, schema_only=False) as copy:
        copy.create()
        owner, ours, trigger, anon_reads, authenticated_inserts = _owner_and_grants(copy.target, "auth.users")
        assert owner == copy.standins[AUTH_OWNER] and ours is False and trigger is True
        assert (owner, ours, trigger) != (MIGRATOR, True, True)
        # public stays the migrator's, with the API roles' grants as on the source
        assert _owner_and_grants(copy.target, "public.audit_reports") == (
            (MIGRATOR,) + _owner_and_grants(platform_target, "public.audit_reports")[1:])
        assert query(copy.target, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'auth'") == [
            (copy.standins[AUTH_OWNER],)]
        assert query(copy.target, "SELECT count(*) FROM public.audit_reports") == [(2000,)]
        standin = copy.standins[AUTH_OWNER]
    assert query(platform_target, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (standin,)) == [(0,)]


def test_the_rehearsal_fails_on_the_rollback_that_needs_ownership_of_auth_users(platform_target, bundle_copy):
    AUTH_OWNER = auth_owner(platform_target)
    add_auth_users_trigger(bundle_copy)
    report = rehearse(platform_target, bundle_copy)
    assert report["passed"] is False
    failure = report["failure"]
    assert failure["phase"] == "rollback" and failure["file"] == ROLLBACK, failure
    assert failure["message"] == 'must be owner of relation users' and "auth.users" in failure["statement"]
    assert report["copy"]["privileges"]["stand_ins"] == {AUTH_OWNER: report["copy"]["privileges"]["stand_ins"][
        AUTH_OWNER]}
    assert report["copy"]["dropped"] is True


def test_a_failing_restore_shows_psqls_own_message(platform_target, monkeypatch):
    def restore_into_nowhere(dump, dump_env, restore, restore_env, source_name):
        return real_pipe(dump, dump_env, restore + ["-c", "SELECT * FROM no_such_table_here"], restore_env,
                         source_name)

    real_pipe = copies._pipe
    monkeypatch.setattr(copies, "_pipe", restore_into_nowhere)
    with pytest.raises(CopyFailed) as failed, DisposableCopy(platform_target, schema_only=True) as copy:
        copy.create()
    assert 'relation "no_such_table_here" does not exist' in str(failed.value)
    assert str(failed.value).startswith("restoring the copy (psql) failed: ")


def test_a_client_older_than_the_server_is_refused_with_the_versions_and_the_fix(platform_target, tmp_path):
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.11'\n")
    fake.chmod(0o755)
    with override_settings(PG_BIN_DIR=str(tmp_path)), DisposableCopy(platform_target, schema_only=True) as copy:
        with pytest.raises(CopyFailed) as refused:
            copy.create()
        assert copy.created is False  # refused before anything was made
    message = str(refused.value)
    assert "is version 14 but the target runs PostgreSQL 15" in message and "PG_BIN_DIR" in message


def test_on_postgresql_17_the_rehearsal_refuses_debians_pg_dump_15_with_the_fix(pg17_server, db, monkeypatch):
    import uuid

    from controlpanel.targets import zoo
    from controlpanel.targets.models import Target

    built = zoo.build_target(zoo.database_dsn(pg17_server, f"platform_t17_{uuid.uuid4().hex[:8]}"), ("baseline",))
    try:
        monkeypatch.setenv("CP_TEST_PG17_TARGET", built.dsn)
        target = Target.objects.create(name="pg17", environment="staging", dsn_env_var="CP_TEST_PG17_TARGET")
        report = rehearse(target)
        failure = report["failure"]
        assert failure["phase"] == "copy" and report["passed"] is False
        assert "pg_dump is version 15 but the target runs PostgreSQL 17" in failure["message"]
        assert "Set PG_BIN_DIR" in failure["message"]
        with psycopg.connect(built.admin_dsn) as conn:  # refused before a copy database was made
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE %s",
                                (copies.copy_prefix() + "%",)).fetchone() == (0,)
    finally:
        zoo.drop_target(built.admin_dsn)
