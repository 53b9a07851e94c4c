"""Every user keeps exactly the access they had: personal organizations, sign-ups, rows without a user.

Access is measured the way Supabase's API sees it: SET ROLE authenticated (or anon, service_role) with the
user in request.jwt.claims, and per table the primary keys one can SELECT, UPDATE and DELETE (each write
tried inside a savepoint that is rolled back).
"""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql
from sqlb_helpers import ACCESS_TABLES as TABLES
from sqlb_helpers import (
    ACTIONS,
    CATEGORIES,
    FORWARD,
    ROLLBACK,
    access_of,
    connect,
    dsn,
    migrate,
    psql,
    validate,
)


def _sample_users(dbname: str) -> list:
    """The heaviest users, users without any report, and an even spread of the rest."""
    with connect(dbname) as conn:
        heavy = [r[0] for r in conn.execute(
            "SELECT user_id FROM audit_reports GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 5")]
        idle = [r[0] for r in conn.execute(
            "SELECT u.id FROM auth.users u WHERE NOT EXISTS (SELECT 1 FROM audit_reports r WHERE r.user_id = u.id) "
            "ORDER BY 1 LIMIT 5")]
        spread = [r[0] for r in conn.execute(
            "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM auth.users) s WHERE n % 6 = 0")]
    return list(dict.fromkeys(heavy + idle + spread))


@pytest.fixture(scope="module")
def before_after(small_template, clone):
    """Access of sampled users, anon and service_role before and after the bundle, on one copy."""
    db = clone(small_template)
    with connect(db) as conn:  # a user with a profile and nothing else
        conn.execute("INSERT INTO auth.users (email) VALUES ('idle@example.test')")
    subjects = [*_sample_users(db), "anon", "service_role"]
    before = access_of(db, subjects)
    migrate(db)
    after = access_of(db, subjects)
    return db, subjects, before, after


@pytest.fixture(scope="module")
def clone(pg_available):
    """Module-scoped variant of the clone factory (the access fixture is shared by the tests below)."""
    from sqlb_helpers import admin_connect, drop_database, unique_name

    created = []

    def _clone(template):
        name = unique_name("acc_")
        with admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                          sql.Identifier(template.name)))
        created.append(name)
        return name

    yield _clone
    for name in created:
        drop_database(name)


def test_every_user_reads_updates_and_deletes_exactly_what_they_could_before(before_after):
    _, subjects, before, after = before_after
    differences = {key: (len(before[key]), len(after[key]), len(after[key] - before[key]),
                         len(before[key] - after[key]))
                   for key in before if before[key] != after[key]}
    assert differences == {}, f"(subject, table, action): (before, after, gained, lost) {differences}"
    assert set(before) == set(after)
    # Not vacuous: users do reach their rows, and the sample has users with and without rows.
    users = [s for s in subjects if s not in ("anon", "service_role")]
    assert sum(bool(after[(u, "audit_reports", "read")]) for u in users) >= 10
    assert any(not after[(u, "audit_reports", "read")] for u in users)
    assert any(after[(u, "audit_reports", "update")] for u in users)
    assert any(after[(u, "audit_reports", "delete")] for u in users)


def test_users_reach_only_their_own_rows_anon_nothing_service_role_everything(before_after):
    db, subjects, _, after = before_after
    with connect(db) as conn:
        own = {u: {r[0] for r in conn.execute("SELECT id FROM audit_reports WHERE user_id = %s", (u,))}
               for u in subjects if u not in ("anon", "service_role")}
        totals = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", t))).fetchone()[0]
                  for t in TABLES}
        organizations = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_default) FROM organizations").fetchone()
        users = conn.execute("SELECT count(*) FROM auth.users").fetchone()[0]
    for user, ids in own.items():
        assert after[(user, "audit_reports", "read")] == ids
    assert all(not after[("anon", t, a)] for t in TABLES for a in ACTIONS)
    assert all(len(after[("service_role", t, "read")]) == totals[t] for t in TABLES)
    # One personal organization per user, plus the member-less home of rows without a user.
    assert organizations == (users + 1, users)


def test_rows_without_a_user_stay_unreadable(small_template, clone):
    """A hand-made installation whose audit_reports.user_id is nullable, with legacy rows of nobody."""
    db = clone(small_template)
    with connect(db) as conn:
        conn.execute("ALTER TABLE audit_reports ALTER COLUMN user_id DROP NOT NULL")
        orphans = {r[0] for r in conn.execute(
            "UPDATE audit_reports SET user_id = NULL WHERE id IN (SELECT id FROM audit_reports ORDER BY id LIMIT 7) "
            "RETURNING id")}
        users = [r[0] for r in conn.execute("SELECT id FROM auth.users ORDER BY id LIMIT 40")]
    migrate(db)
    res, output = validate(db)
    assert res == {c: "PASSED" for c in CATEGORIES}, output
    with connect(db) as conn:
        home = {r[0] for r in conn.execute("SELECT organization_id FROM audit_reports WHERE user_id IS NULL")}
        unassigned = conn.execute("SELECT id FROM organizations WHERE slug = 'unassigned-legacy-rows'").fetchone()[0]
        members = conn.execute("SELECT count(*) FROM organization_memberships WHERE organization_id = %s",
                               (unassigned,)).fetchone()[0]
    assert home == {unassigned} and members == 0
    seen = access_of(db, users)
    assert not any(orphans & ids for ids in seen.values())


def _triggers_on_auth_users(db) -> set:
    with connect(db) as conn:
        return {r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass AND NOT tgisinternal")}


def test_new_signups_get_a_personal_organization_without_any_trigger_on_auth_users(small_template, clone):
    db = clone(small_template)
    before = _triggers_on_auth_users(db)
    psql(db, FORWARD[0])
    assert _triggers_on_auth_users(db) == before  # 0001 hangs nothing on auth.users
    for path in FORWARD[1:]:
        psql(db, path)
    assert _triggers_on_auth_users(db) == before
    with connect(db) as conn:
        # Old code path with Supabase's profile-on-signup trigger: user, then profile.
        with_profile = conn.execute("INSERT INTO auth.users (email) VALUES ('new-a@example.test') RETURNING id"
                                    ).fetchone()[0]
        # An installation without that trigger: the user has no profile and writes a report first.
        conn.execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created")
        bare = conn.execute("INSERT INTO auth.users (email) VALUES ('new-b@example.test') RETURNING id").fetchone()[0]
        conn.execute("ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created")
        assert conn.execute("SELECT count(*) FROM profiles WHERE id = %s", (bare,)).fetchone()[0] == 0
        personal = conn.execute(
            "SELECT o.id, o.is_default, m.role, m.status, p.organization_id FROM organizations o "
            "JOIN organization_memberships m ON m.organization_id = o.id AND m.user_id = o.id "
            "JOIN profiles p ON p.id = o.id WHERE o.id = %s", (with_profile,)).fetchone()
        assert personal == (with_profile, True, "admin", "active", with_profile)
    with psycopg.connect(dsn(db)) as conn:
        conn.execute("SET ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"sub": str(bare), "role": "authenticated"}),))
        report = conn.execute("INSERT INTO audit_reports (user_id, title, process_description) "
                              "VALUES (%s, 'first', 'written before any profile') RETURNING id, organization_id",
                              (bare,)).fetchone()
        assert report[1] == bare
        assert conn.execute("SELECT count(*) FROM audit_reports").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM organizations").fetchone()[0] == 1
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"sub": str(with_profile), "role": "authenticated"}),))
        assert conn.execute("SELECT count(*) FROM audit_reports WHERE id = %s", (report[0],)).fetchone()[0] == 0
        conn.commit()


def _progress(db) -> dict:
    with connect(db) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT table_name, rows_done, rows_total, status FROM migration_progress")}


def test_progress_totals_are_right_after_rollback_and_rerun(small_template, clone):
    """Issue 15: after a rollback and a re-run the totals were NULL (shown as "20000 / 0", a negative ETA)."""
    from pglast import split

    db = clone(small_template)
    counts = small_template.counts
    users, tables = counts["auth.users"], [t for t in TABLES if f"public.{t}" in counts]
    migrate(db)
    psql(db, ROLLBACK)
    for path in FORWARD[:2]:
        psql(db, path)
    # The data file statement by statement, as the panel runs it: totals right from the first batch on.
    statements = list(split(FORWARD[2].read_text()))
    prepare = next(i for i, s in enumerate(statements) if "CALL public.mt_prepare_data_migration" in s)
    with connect(db) as conn:
        for statement in statements[:prepare + 1]:
            conn.execute(statement)
        started = _progress(db)
        assert started["organization_memberships"] == (users, users, "done")
        for table in tables:
            assert started[table] == (0, counts[f"public.{table}"], "pending"), table
        for statement in statements[prepare + 1:]:
            conn.execute(statement)
    done = _progress(db)
    assert done["organization_memberships"] == (users, users, "done")
    for table in tables:
        total = counts[f"public.{table}"]
        assert done[table] == (total, total, "done"), table
