"""A hand-made Supabase privilege model on a baseline clone (stand-in until the zoo's `platform` shape)."""

import psycopg
from psycopg.conninfo import make_conninfo

from controlpanel.targets.connection import dsn_for

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


def make_platform(target, monkeypatch):
    """Give a baseline clone Supabase's privileges; from then on its DSN connects as the migrator."""
    target.admin_dsn = dsn_for(target)
    as_admin(target, PLATFORM_SQL)
    monkeypatch.setenv(target.dsn_env_var, make_conninfo(target.admin_dsn, user=MIGRATOR))
    return target


def as_admin(target, statement: str) -> None:
    with psycopg.connect(getattr(target, "admin_dsn", None) or dsn_for(target), autocommit=True) as conn:
        conn.execute(statement)
