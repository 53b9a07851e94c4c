"""Impersonation gives the right auth.uid() under every definition Supabase has shipped."""

import psycopg
import pytest

from controlpanel.evidence.impersonation import NO_USER, as_role, rolled_back
from controlpanel.targets import zoo
from tests.helpers.platform import as_admin

USER = "6a3f2b1c-0000-4000-8000-000000000001"

def _uid(conn, role, user=None):
    with as_role(conn, role, user):
        return conn.execute("SELECT auth.uid()::text").fetchone()[0]


@pytest.mark.django_db
def test_every_shipped_auth_uid_sees_the_impersonated_user(platform_target, target_dsn):
    """As the platform's non-superuser role (SET ROLE through its grants), under each of the zoo's variants."""
    failures = {}
    # The stand-in's own definition (no replacement) first, then every replacement.
    for name in sorted(zoo.UID_VARIANTS, key=lambda v: zoo.uid_sql(v) is not None):
        if zoo.uid_sql(name):
            as_admin(platform_target, zoo.uid_sql(name))
        # A fresh session each time: an unset custom setting reads NULL only until it is first set.
        with psycopg.connect(target_dsn(platform_target), autocommit=True) as conn, rolled_back(conn):
            try:
                seen = [_uid(conn, "anon"), _uid(conn, "authenticated", USER), _uid(conn, "anon"),
                        _uid(conn, "service_role"), _uid(conn, "authenticated", USER)]
            except psycopg.Error as exc:
                failures[name] = str(exc).splitlines()[0]
                continue
        if seen[1] != USER or seen[4] != USER or any(s not in (None, NO_USER) for s in (seen[0], seen[2], seen[3])):
            failures[name] = seen
    assert len(zoo.UID_VARIANTS) == 8 and not failures, failures
