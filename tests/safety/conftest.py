"""Fixtures for the safety tests: editable bundle copies and targets migrated with psql."""

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from controlpanel.targets.connection import dsn_for
from tests.support import targets as target_support


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}: the bundle changed, update the test"
    path.write_text(text.replace(old, new, 1))


def migrate(target) -> None:
    """Apply the forward files the way the runbook says (psql -v ON_ERROR_STOP=1 -f)."""
    target_support.apply_bundle(dsn_for(target))


def query(target, sql: str, params=None):
    with psycopg.connect(dsn_for(target), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


MIGRATOR, AUTH_OWNER = "platform_migrator", "platform_auth_admin"

# Supabase's privilege model by hand (until the zoo's `platform` shape): the migration role is no superuser,
# is granted the API roles, owns public; auth and auth.users belong to another role.
PLATFORM_SQL = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{AUTH_OWNER}') THEN CREATE ROLE {AUTH_OWNER} NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{MIGRATOR}') THEN
    CREATE ROLE {MIGRATOR} LOGIN NOSUPERUSER BYPASSRLS CREATEDB CREATEROLE;
  END IF;
END $$;
GRANT anon, authenticated, service_role TO {MIGRATOR};
ALTER SCHEMA auth OWNER TO {AUTH_OWNER};
ALTER TABLE auth.users OWNER TO {AUTH_OWNER};
GRANT USAGE ON SCHEMA auth TO {MIGRATOR};
GRANT ALL ON auth.users TO {MIGRATOR};
ALTER SCHEMA public OWNER TO {MIGRATOR};
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
           AND c.relkind IN ('r', 'v', 'S', 'm') LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO {MIGRATOR}', r.rel);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO {MIGRATOR}', r.fn);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p WHERE p.pronamespace = 'auth'::regnamespace LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO {AUTH_OWNER}', r.fn);
  END LOOP;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO {MIGRATOR};
"""


@pytest.fixture
def platform_target(target_factory, monkeypatch):
    target = target_factory(environment="staging")
    target.admin_dsn = dsn_for(target)
    as_admin(target, PLATFORM_SQL)
    monkeypatch.setenv(target.dsn_env_var, make_conninfo(target.admin_dsn, user=MIGRATOR))
    return target


def as_admin(target, statement: str) -> None:
    with psycopg.connect(getattr(target, "admin_dsn", None) or dsn_for(target), autocommit=True) as conn:
        conn.execute(statement)
