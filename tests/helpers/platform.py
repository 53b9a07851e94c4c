"""Helpers for tests on the zoo's `platform` shape (Supabase's privileges, reached as a non-superuser)."""

import uuid
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo


def migrator(target) -> str:
    return target.built.roles.migration


def auth_owner(target) -> str:
    return target.built.roles.auth_admin


def as_admin(target, statement, params=None):
    """Run SQL as the superuser (set-up and inspection only; the panel never does)."""
    with psycopg.connect(target.built.admin_dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


@contextmanager
def login_role(target, monkeypatch, *, attributes="NOSUPERUSER", member_of=()):
    """A throwaway login role of this test (the zoo's roles are shared by every session: never alter them);
    the target's DSN connects as it until the end."""
    name = f"platform_{uuid.uuid4().hex[:8]}"
    as_admin(target, sql.SQL("CREATE ROLE {} LOGIN " + attributes).format(sql.Identifier(name)))
    for role in member_of:
        as_admin(target, sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(name)))
    monkeypatch.setenv(target.dsn_env_var, make_conninfo(target.built.admin_dsn, user=name))
    try:
        yield name
    finally:
        as_admin(target, sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(name)))
