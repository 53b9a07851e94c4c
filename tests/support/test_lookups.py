"""Membership lookups against a real migrated target spread over several organizations."""

import os

import psycopg
import pytest

from controlpanel.support import lookups
from controlpanel.support.models import LookupResult


def target_rows(target, sql, params=()):
    with psycopg.connect(os.environ[target.dsn_env_var], autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def conn(org_target):
    with lookups.lookup_connection(org_target) as connection:
        yield connection


def memberships_of(target, user_id):
    return sorted(target_rows(target, "SELECT o.slug, m.role, m.status, m.accepted_at IS NULL "
                                      "FROM public.organization_memberships m JOIN public.organizations o "
                                      "ON o.id = m.organization_id WHERE m.user_id = %s", (user_id,)))


def as_tuples(result):
    return sorted((m["slug"], m["role"], m["status"], m["accepted_at"] is None) for m in result["memberships"])


def test_person_by_email_lists_every_membership(org_target, conn):
    # A user with a second (guest or invited) membership, chosen from the target, not hard-coded.
    user_id, email = target_rows(org_target, "SELECT u.id, u.email FROM auth.users u JOIN "
                                             "public.organization_memberships m ON m.user_id = u.id "
                                             "GROUP BY u.id HAVING count(*) = 2 LIMIT 1")[0]
    result = lookups.find_person(conn, email)
    assert result["found"] and result["user"]["id"] == str(user_id) and result["user"]["email"] == email
    assert as_tuples(result) == memberships_of(org_target, user_id)
    assert len(result["memberships"]) == 2
    assert set(result["user"]) == {"id", "email", "name", "created_at"}  # no profile fields beyond a name


def test_invited_membership_has_no_accepted_date(org_target, conn):
    user_id, email = target_rows(org_target, "SELECT u.id, u.email FROM auth.users u JOIN "
                                             "public.organization_memberships m ON m.user_id = u.id "
                                             "WHERE m.status = 'invited' LIMIT 1")[0]
    invited = [m for m in lookups.find_person(conn, email.upper())["memberships"] if m["status"] == "invited"]
    assert invited and invited[0]["accepted_at"] is None and invited[0]["invited_at"]


def test_person_by_user_id(org_target, conn):
    user_id, email = target_rows(org_target, "SELECT id, email FROM auth.users ORDER BY email DESC LIMIT 1")[0]
    result = lookups.find_person(conn, f"  {user_id}  ")
    assert result["user"]["email"] == email
    assert as_tuples(result) == memberships_of(org_target, user_id)


def test_unknown_person(conn):
    assert lookups.find_person(conn, "nobody@nowhere.invalid") == {"found": False}


def test_organization_by_slug_with_counts_and_members(org_target, conn):
    org_id, slug = target_rows(org_target, "SELECT id, slug FROM public.organizations WHERE NOT is_default "
                                           "ORDER BY slug LIMIT 1")[0]
    result = lookups.find_organization(conn, slug)
    assert result["organization"]["slug"] == slug
    reports, jobs, members = target_rows(org_target, """
        SELECT (SELECT count(*) FROM public.audit_reports WHERE organization_id = %(id)s),
               (SELECT count(*) FROM public.automation_jobs WHERE organization_id = %(id)s),
               (SELECT count(*) FROM public.organization_memberships WHERE organization_id = %(id)s)""",
                                         {"id": org_id})[0]
    assert reports > 0 and result["counts"] == {"reports": reports, "jobs": jobs}
    assert result["members_total"] == members
    assert len(result["members"]) == min(members, lookups.PAGE_SIZE)
    assert {m["role"] for m in result["members"]} <= {"admin", "member", "guest"}
    emails = [m["email"] for m in result["members"]]
    assert emails == sorted(emails)


def test_organization_members_are_paginated(org_target, conn):
    slug, members = target_rows(org_target, "SELECT o.slug, count(*) FROM public.organizations o JOIN "
                                            "public.organization_memberships m ON m.organization_id = o.id "
                                            "GROUP BY o.slug ORDER BY count(*) DESC LIMIT 1")[0]
    assert members > lookups.PAGE_SIZE  # 200 users over 3 organizations
    first = lookups.find_organization(conn, slug, page=1)
    second = lookups.find_organization(conn, slug, page=2)
    assert first["pages"] == -(-members // lookups.PAGE_SIZE)
    assert not {m["id"] for m in first["members"]} & {m["id"] for m in second["members"]}


def test_organization_by_name_or_partial_name(org_target, conn):
    name = target_rows(org_target, "SELECT name FROM public.organizations WHERE NOT is_default LIMIT 1")[0][0]
    assert lookups.find_organization(conn, name.lower())["organization"]["name"] == name
    word = name.split()[0]
    matching = target_rows(org_target, "SELECT count(*) FROM public.organizations WHERE name ILIKE %s",
                           (f"%{word}%",))[0][0]
    result = lookups.find_organization(conn, word)
    assert (len(result["candidates"]) == matching) if matching > 1 else ("organization" in result)
    assert lookups.find_organization(conn, "no-such-org-zz") == {"found": False, "candidates": []}


def test_users_without_membership(org_target):
    orphans = {r[0] for r in target_rows(
        org_target, "DELETE FROM public.organization_memberships WHERE user_id IN "
                    "(SELECT id FROM auth.users ORDER BY id LIMIT 3) RETURNING user_id")}
    with lookups.lookup_connection(org_target) as conn:
        result = lookups.users_without_membership(conn)
    assert result["count"] == 3 and not result["truncated"]
    assert sorted(u["id"] for u in result["users"]) == sorted(str(u) for u in orphans)


def test_lookup_session_is_read_only(conn):
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("DELETE FROM public.organization_memberships")


def test_perform_stores_the_answer(org_target, support):
    email = target_rows(org_target, "SELECT email FROM auth.users LIMIT 1")[0][0]
    lookup = LookupResult.objects.create(requester=support, target=org_target, kind="person", query=email)
    lookups.perform(lookup)
    lookup.refresh_from_db()
    assert lookup.status == "done" and lookup.result["user"]["email"] == email and lookup.elapsed_ms > 0


def test_unmigrated_target_fails_with_a_clear_message(target_factory, support):
    target = target_factory(name="plain")
    lookup = LookupResult.objects.create(requester=support, target=target, kind="person", query="x@example.com")
    lookups.perform(lookup)
    lookup.refresh_from_db()
    assert lookup.status == "failed" and "no organizations yet" in lookup.error
