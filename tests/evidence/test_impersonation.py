"""Impersonation gives the right auth.uid() under every definition Supabase has shipped."""

import psycopg
import pytest

from controlpanel.evidence.impersonation import NO_USER, as_role, rolled_back

USER = "6a3f2b1c-0000-4000-8000-000000000001"

# Every auth.uid() body Supabase has shipped: one setting or both, either precedence, with or without nullif.
UID_VARIANTS = {
    "claim_sub_nullif": "nullif(current_setting('request.jwt.claim.sub', true), '')::uuid",
    "claim_sub_bare": "current_setting('request.jwt.claim.sub', true)::uuid",
    "claims_nullif": "(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid",
    "claims_bare": "(current_setting('request.jwt.claims', true)::jsonb ->> 'sub')::uuid",
    "sub_then_claims_nullif": "coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''), "
                              "(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid",
    "claims_then_sub_nullif": "coalesce((nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'), "
                              "nullif(current_setting('request.jwt.claim.sub', true), ''))::uuid",
    "sub_then_claims_bare": "coalesce(current_setting('request.jwt.claim.sub', true), "
                            "current_setting('request.jwt.claims', true)::jsonb ->> 'sub')::uuid",
    "claims_then_sub_bare": "coalesce(current_setting('request.jwt.claims', true)::jsonb ->> 'sub', "
                            "current_setting('request.jwt.claim.sub', true))::uuid",
}


def _uid(conn, role, user=None):
    with as_role(conn, role, user):
        return conn.execute("SELECT auth.uid()::text").fetchone()[0]


@pytest.mark.django_db
def test_every_shipped_auth_uid_sees_the_impersonated_user(target_factory, target_dsn):
    target = target_factory()
    failures = {}
    for name, body in UID_VARIANTS.items():
        with psycopg.connect(target_dsn(target), autocommit=True) as admin:
            admin.execute(f"CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE "
                          f"AS $$ SELECT {body} $$")
        # A fresh session each time: an unset custom setting reads NULL only until it is first set.
        with psycopg.connect(target_dsn(target), autocommit=True) as conn, rolled_back(conn):
            try:
                seen = [_uid(conn, "anon"), _uid(conn, "authenticated", USER), _uid(conn, "anon"),
                        _uid(conn, "service_role"), _uid(conn, "authenticated", USER)]
            except psycopg.Error as exc:
                failures[name] = str(exc).splitlines()[0]
                continue
        if seen[1] != USER or seen[4] != USER or any(s not in (None, NO_USER) for s in (seen[0], seen[2], seen[3])):
            failures[name] = seen
    assert not failures, failures
