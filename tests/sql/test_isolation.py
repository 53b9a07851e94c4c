"""Property-based tenant isolation: random users of many organizations, impersonated as Supabase does."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors, sql
from sqlb_helpers import admin_connect, connect, drop_database, dsn, migrate, unique_name

from controlpanel.targets.seeding import distribute_into_organizations

ORG_TABLES = ("audit_reports", "automation_jobs", "generated_automations")
N_ORGS = 12


@pytest.fixture(scope="module")
def world(small_template):
    name = unique_name("iso_")
    with admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                      sql.Identifier(small_template.name)))
    try:
        migrate(name)
        with connect(name) as conn:
            info = distribute_into_organizations(conn, N_ORGS)
            assert info["organizations"] == N_ORGS
            w = {"db": name}
            w["members"] = conn.execute(
                "SELECT user_id, organization_id, role, status FROM organization_memberships").fetchall()
            # Personal organizations included: nobody may reach another user's.
            w["orgs"] = [r[0] for r in conn.execute("SELECT id FROM organizations ORDER BY slug")]
            w["counts"] = {t: Counter(dict(conn.execute(
                f"SELECT organization_id, count(*) FROM public.{t} GROUP BY 1").fetchall())) for t in ORG_TABLES}
            w["profiles"] = dict(conn.execute("SELECT id, organization_id FROM profiles").fetchall())
            w["waitlist"] = conn.execute("SELECT id, organization_id, user_id FROM waitlist").fetchall()
            w["report_of_org"] = dict(conn.execute(
                "SELECT DISTINCT ON (organization_id) organization_id, id FROM audit_reports").fetchall())
            w["users"] = sorted({m[0] for m in w["members"]})
        active = defaultdict(set)
        role_in = {}
        for user, org, role, status in w["members"]:
            if status == "active":
                active[user].add(org)
                role_in[(user, org)] = role
        w["active"], w["role_in"] = active, role_in
        # The world is what the brief asks for: many orgs, admins, guests of a second org, invitations.
        roles = Counter((m[2], m[3]) for m in w["members"])
        assert roles[("admin", "active")] and roles[("guest", "active")] and roles[("member", "invited")]
        yield w
    finally:
        drop_database(name)


def _impersonate(cur, user, role="authenticated"):
    cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    claims = {"role": role} if user is None else {"sub": str(user), "role": role}
    cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


def _expect_denied(cur, query, params):
    cur.execute("SAVEPOINT probe")
    try:
        cur.execute(query, params)
    except errors.InsufficientPrivilege:
        cur.execute("ROLLBACK TO SAVEPOINT probe")
        return True
    cur.execute("ROLLBACK TO SAVEPOINT probe")
    return False


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_users_see_and_write_only_their_organizations(world, data):
    user = data.draw(st.sampled_from(world["users"]), label="user")
    mine = world["active"][user]
    others = [o for o in world["orgs"] if o not in mine]
    other = data.draw(st.sampled_from(others), label="other_org")
    writable = sorted(o for o in mine if world["role_in"][(user, o)] in ("admin", "member"))
    admin_of = {o for o in mine if world["role_in"][(user, o)] == "admin"}
    guest_of = sorted(o for o in mine if world["role_in"][(user, o)] == "guest")

    with psycopg.connect(connect_dsn(world), autocommit=False) as conn, conn.cursor() as cur:
        _impersonate(cur, user)
        # Reads: exactly the rows of my active organizations, in every tenant table.
        for table in ORG_TABLES:
            cur.execute(f"SELECT organization_id, count(*) FROM public.{table} GROUP BY 1")
            seen = Counter(dict(cur.fetchall()))
            expected = Counter({o: c for o, c in world["counts"][table].items() if o in mine})
            assert seen == expected, table
        cur.execute("SELECT id FROM profiles")
        assert {r[0] for r in cur.fetchall()} == {p for p, o in world["profiles"].items() if o in mine} | {user}
        cur.execute("SELECT id FROM organizations")
        assert {r[0] for r in cur.fetchall()} == mine
        cur.execute("SELECT count(*) FROM organization_memberships")
        assert cur.fetchone()[0] == sum(1 for m in world["members"] if m[1] in mine or m[0] == user)
        cur.execute("SELECT id FROM waitlist")
        assert {r[0] for r in cur.fetchall()} == {
            i for i, o, u in world["waitlist"] if o in mine and (u == user or o in admin_of)}

        # Writes into an organization I do not belong to.
        assert _expect_denied(cur, "INSERT INTO audit_reports (user_id, organization_id, title, process_description) "
                                   "VALUES (%s, %s, 'x', 'x')", (user, other))
        cur.execute("UPDATE audit_reports SET title = 'pwned' WHERE organization_id = %s", (other,))
        assert cur.rowcount == 0
        cur.execute("DELETE FROM automation_jobs WHERE organization_id = %s", (other,))
        assert cur.rowcount == 0
        cur.execute("UPDATE organizations SET name = 'pwned' WHERE id = %s", (other,))
        assert cur.rowcount == 0
        # Cannot move a row of mine into another organization.
        movable = [o for o in writable if o in world["report_of_org"]]
        if movable:
            assert _expect_denied(cur, "UPDATE audit_reports SET organization_id = %s WHERE id = %s",
                                  (other, world["report_of_org"][movable[0]]))
        # Cannot add myself to an organization, nor raise my own role.
        assert _expect_denied(cur, "INSERT INTO organization_memberships (organization_id, user_id, role, status) "
                                   "VALUES (%s, %s, 'admin', 'active')", (other, user))
        cur.execute("UPDATE organization_memberships SET role = 'admin', status = 'active' "
                    "WHERE user_id = %s AND NOT (organization_id = ANY(%s))", (user, list(admin_of)))
        assert cur.rowcount == 0
        # Guests read but do not write.
        if guest_of:
            assert _expect_denied(cur, "INSERT INTO audit_reports (user_id, organization_id, title, "
                                       "process_description) VALUES (%s, %s, 'x', 'x')", (user, guest_of[0]))
        conn.rollback()


def connect_dsn(world) -> str:
    return dsn(world["db"])


def test_anon_sees_nothing_and_service_role_sees_everything(world):
    tables = (*ORG_TABLES, "profiles", "waitlist", "organizations", "organization_memberships")
    with connect(world["db"]) as su:
        totals = {t: su.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0] for t in tables}
    with psycopg.connect(connect_dsn(world), autocommit=False) as conn, conn.cursor() as cur:
        _impersonate(cur, None, "anon")
        for table in tables:
            cur.execute("SAVEPOINT s")
            try:
                cur.execute(f"SELECT count(*) FROM public.{table}")
                assert cur.fetchone()[0] == 0, table
            except errors.InsufficientPrivilege:
                cur.execute("ROLLBACK TO SAVEPOINT s")
        conn.rollback()
        _impersonate(cur, None, "service_role")
        for table in tables:
            cur.execute(f"SELECT count(*) FROM public.{table}")
            assert cur.fetchone()[0] == totals[table], table
        conn.rollback()


def test_every_user_keeps_their_personal_org_and_joins_exactly_one_shared_org(world):
    personal = {m[0] for m in world["members"] if m[0] == m[1] and m[2] == "admin" and m[3] == "active"}
    shared = Counter(m[0] for m in world["members"]
                     if m[0] != m[1] and m[3] == "active" and m[2] in ("admin", "member"))
    assert personal == set(world["users"])
    assert set(shared) == set(world["users"]) and set(shared.values()) == {1}
