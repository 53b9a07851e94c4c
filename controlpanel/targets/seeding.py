"""Fast, server-side seeding of ProcessAudit target databases (no Django models).

``seed_target`` fills a baseline (single-tenant) target with realistic, varied data using
``INSERT ... SELECT generate_series(...)`` so that a million reports take seconds, not minutes.
``distribute_into_organizations`` runs AFTER the multi-tenant migration and spreads users and their
rows over many organizations, so that benchmarks and isolation tests have something to isolate.

Both take a psycopg 3 connection or a DSN string. Data is deterministic for a given ``seed``
(ids are md5-derived; the rest comes from ``random()`` after ``setseed``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from controlpanel.targets.catalog import table_counts
from controlpanel.targets.tenancy import TENANT_TABLES


@contextmanager
def _connection(conn_or_dsn: Any):
    if isinstance(conn_or_dsn, str):
        conn = psycopg.connect(conn_or_dsn, autocommit=True)
        try:
            yield conn
        finally:
            conn.close()
    else:
        yield conn_or_dsn


def _table_exists(cur, qualified: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,))
    return bool(cur.fetchone()[0])


def _column_exists(cur, table: str, column: str) -> bool:
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s"
        " AND NOT attisdropped)",
        (f"public.{table}", column),
    )
    return bool(cur.fetchone()[0])


def _columns(cur, table: str) -> dict[str, bool]:
    """Column name -> "must be given" (NOT NULL, no default, not generated) for public.<table>."""
    cur.execute(
        "SELECT a.attname, a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''"
        " FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        (f"public.{table}",),
    )
    return dict(cur.fetchall())


def _fit(cur, table: str, spec: list[tuple[str, str, str | None]]) -> tuple[str, str]:
    """(column list, value list) of an INSERT for the columns of ``spec`` this installation has.

    ``spec`` is (column, expression, fallback): where the installation makes a column NOT NULL without a
    default, a nullable expression is wrapped in coalesce(expression, fallback). Installations differ (the
    target zoo's shapes); a required column the seeder does not know about is an error that names it.
    """
    columns = _columns(cur, table)
    known = {column for column, _, _ in spec}
    unknown = sorted(c for c, required in columns.items() if required and c not in known)
    if unknown:
        raise RuntimeError(f"public.{table} requires columns the seeder cannot fill: {', '.join(unknown)}")
    names, values = [], []
    for column, expression, fallback in spec:
        if column not in columns:
            continue
        names.append(column)
        values.append(f"coalesce({expression}, {fallback})" if columns[column] and fallback else expression)
    return ", ".join(names), ", ".join(values)


def _try_replica_mode(cur) -> bool:
    """Skip ordinary triggers (updated_at, profile-on-signup) and FK checks for speed, if allowed."""
    cur.execute("SAVEPOINT seed_replica")
    try:
        cur.execute("SET LOCAL session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        cur.execute("ROLLBACK TO SAVEPOINT seed_replica")
        return False
    cur.execute("RELEASE SAVEPOINT seed_replica")
    return True


_WORDS = """ARRAY['invoice','onboarding','procurement','payroll','support','shipping','hiring','compliance',
'reporting','inventory','billing','renewal','refund','lead','contract','expense','audit','ticket']"""
_VERBS = """ARRAY['Approve','Reconcile','Triage','Review','Route','Publish','Collect','Escalate','Archive',
'Validate','Schedule','Sync']"""
_SENTENCES = """ARRAY[
'The team receives requests by email and copies them into a shared spreadsheet. ',
'A manager approves each item manually, which often takes two or three days. ',
'Data is re-typed from PDF attachments into the accounting system by hand. ',
'Customers are notified with a templated message once the status changes. ',
'Exceptions are discussed in a weekly meeting and tracked in a chat channel. ',
'Reports are compiled at month end from four different tools. ',
'Errors are usually discovered only after the invoice has been sent. ',
'New joiners learn the process by shadowing a colleague for a week. '
]"""
_TAGS = """ARRAY['finance','hr','sales','ops','it','legal','urgent','q1','q2','q3','q4','pilot','customer',
'internal','ai']"""
_COMPANIES = """ARRAY['Acme GmbH','Globex','Initech','Umbrella Ltd','Hooli','Stark Industries','Wayne Enterprises',
'Tyrell Corp','Soylent','Cyberdyne','Wonka Industries','Vandelay Import']"""
_FIRST = """ARRAY['Ana','Ben','Chloe','Dmitri','Emma','Farid','Grace','Hiro','Ines','Jonas','Kemal','Lena',
'Mateo','Nora','Omar','Priya','Quinn','Rosa','Sven','Tara']"""
_LAST = """ARRAY['Novak','Smith','Okafor','Meyer','Rossi','Tanaka','Dubois','Silva','Kowalski','Haddad',
'Larsen','Ivanova','Nguyen','Garcia','Brown']"""


def _pick(array_sql: str) -> str:
    return f"({array_sql})[1 + floor(random() * cardinality({array_sql}))::int]"


def seed_target(conn_or_dsn: Any, users: int, reports: int, seed: int = 42, *, waitlist: bool = True,
                analyze: bool = True, vacuum: bool = True) -> dict[str, Any]:
    """Seed a baseline target; returns row counts per table plus ``seconds``.

    Users get md5-derived ids ``md5('u:<seed>:<n>')``; reports are spread over users with a skew
    (a few heavy users, a long tail). ~0.3 automation jobs per report (most linked to a report),
    one generated automation per completed job (some two). If the target was already migrated
    (``organization_id`` columns exist), the bundle's triggers put every row into its user's personal
    organization, created for new users as for any sign-up.
    """
    if users < 1:
        raise ValueError("users must be >= 1")
    started = time.monotonic()
    with _connection(conn_or_dsn) as conn:
        previous_autocommit = conn.autocommit
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                migrated = _column_exists(cur, "audit_reports", "organization_id")
                # On a migrated target the bundle's triggers give every row its user's personal organization
                # (creating it for new users, as for any sign-up): they must run, so no replica mode there.
                if not migrated:
                    _try_replica_mode(cur)
                fraction = (seed % 1_000_003) / 1_000_003.0
                cur.execute("SELECT setseed(%s)", (fraction * 2 - 1,))
                params = {"seed": seed, "users": users, "reports": reports}
                cur.execute(
                    f"""
                    INSERT INTO auth.users (id, email, encrypted_password, raw_user_meta_data, raw_app_meta_data,
                                            email_confirmed_at, last_sign_in_at, created_at, updated_at)
                    SELECT md5('u:' || %(seed)s || ':' || g)::uuid,
                           format('user%%s.s%%s@example-%%s.test', g, %(seed)s, g %% 97),
                           md5('pw' || g),
                           jsonb_build_object('full_name', {_pick(_FIRST)} || ' ' || {_pick(_LAST)}),
                           '{{"provider": "email", "providers": ["email"]}}'::jsonb,
                           CASE WHEN random() < 0.9 THEN t END,
                           CASE WHEN random() < 0.8 THEN t + random() * interval '300 days' END,
                           t, t
                    FROM (SELECT g, now() - interval '800 days' + (g::float8 / %(users)s) * interval '790 days' AS t
                          FROM generate_series(1, %(users)s) g) s
                    ON CONFLICT DO NOTHING
                    """,
                    params,
                )
                cols, values = _fit(cur, "profiles", [
                    ("id", "u.id", None),
                    ("full_name", "u.raw_user_meta_data ->> 'full_name'", "''"),
                    ("company", f"CASE WHEN random() < 0.85 THEN {_pick(_COMPANIES)} END", "''"),
                    ("role", "(ARRAY['owner','analyst','ops lead','cfo','engineer', NULL])"
                             "[1 + floor(random() * 6)::int]", "'analyst'"),
                    ("created_at", "u.created_at", None),
                    ("updated_at", "u.created_at", None),
                ])
                updated = [f"{c} = excluded.{c}" for c in ("full_name", "company", "role") if c in cols.split(", ")]
                on_conflict = f"DO UPDATE SET {', '.join(updated)}" if updated else "DO NOTHING"
                cur.execute(
                    f"""
                    INSERT INTO public.profiles ({cols})
                    SELECT {values}
                    FROM auth.users u
                    WHERE u.email LIKE '%%.s' || %(seed)s || '@%%'
                    ON CONFLICT (id) {on_conflict}
                    """,
                    params,
                )
                # Reports: physical order follows created_at, as in a real table; skewed user distribution.
                cols, values = _fit(cur, "audit_reports", [
                    ("id", "md5('r:' || %(seed)s || ':' || g)::uuid", None),
                    ("user_id", "md5('u:' || %(seed)s || ':' || least(%(users)s,"
                                " 1 + floor(%(users)s * power(random(), 1.7))::int))::uuid", None),
                    ("title", f"{_pick(_VERBS)} || ' ' || {_pick(_WORDS)} || ' process #' || g", None),
                    ("process_description",
                     f"repeat({_pick(_SENTENCES)}, 1 + floor(random() * 3)::int) || {_pick(_SENTENCES)}"
                     " || 'Volume: ' || floor(random() * 5000) || ' items per month.'", None),
                    ("file_content", f"""CASE WHEN random() < 0.04
                                THEN repeat(md5(g::text) || ' ' || {_pick(_SENTENCES)}, 20 + floor(random() * 80)::int)
                           END""", "''"),
                    ("answers", f"""jsonb_build_object('team_size', 1 + floor(random() * 200)::int,
                                              'tools', jsonb_build_array({_pick(_WORDS)}, {_pick(_WORDS)}),
                                              'frequency', (ARRAY['daily','weekly','monthly'])[1 + g %% 3],
                                              'pain', {_pick(_SENTENCES)})""", None),
                    ("report_data", f"""jsonb_build_object('score', round((random() * 100)::numeric, 1),
                                              'automation_potential', round(random()::numeric, 2),
                                              'summary', {_pick(_SENTENCES)} || {_pick(_SENTENCES)},
                                              'recommendations', jsonb_build_array(
                                                  {_pick(_VERBS)} || ' ' || {_pick(_WORDS)},
                                                  {_pick(_VERBS)} || ' ' || {_pick(_WORDS)}),
                                              'estimated_hours_saved', floor(random() * 400)::int)""", None),
                    ("is_favorite", "random() < 0.1", None),
                    ("tags", f"(ARRAY[{_pick(_TAGS)}, {_pick(_TAGS)}, {_pick(_TAGS)}])[1:floor(random() * 4)::int]",
                     None),
                    ("created_at", "t", None),
                    ("updated_at", "t + random() * interval '20 days'", None),
                ])
                cur.execute(
                    f"""
                    INSERT INTO public.audit_reports ({cols})
                    SELECT {values}
                    FROM (SELECT g, now() - interval '730 days'
                                    + (g::float8 / greatest(%(reports)s, 1)) * interval '729 days'
                                    + random() * interval '12 hours' AS t
                          FROM generate_series(1, %(reports)s) g) s
                    ON CONFLICT DO NOTHING
                    """,
                    params,
                )
                # ~27 %% of reports get a job linked to them, plus ~3 %% of reports worth of standalone jobs.
                status_pick = (
                    "(CASE WHEN x < 0.6 THEN 'completed' WHEN x < 0.7 THEN 'failed' WHEN x < 0.8 THEN 'pending'"
                    " WHEN x < 0.9 THEN 'queued' ELSE 'processing' END)"
                )
                job_cols, job_values = _fit(cur, "automation_jobs", [
                    ("id", "id", None),
                    ("user_id", "user_id", None),
                    ("audit_report_id", "audit_report_id", None),
                    ("status", "st", None),
                    ("progress", """CASE st WHEN 'completed' THEN 100 WHEN 'failed' THEN floor(random() * 90)::int
                                   WHEN 'processing' THEN 10 + floor(random() * 80)::int ELSE 0 END""", None),
                    ("automation_type", "(ARRAY['n8n','n8n','zapier','make'])[1 + floor(random() * 4)::int]", None),
                    ("workflow_data", f"""CASE WHEN st IN ('completed','processing')
                                THEN jsonb_build_object('nodes', 3 + floor(random() * 12)::int,
                                                        'trigger', {_pick(_WORDS)}, 'version', 1) END""",
                     "'{}'::jsonb"),
                    ("error_message", """CASE WHEN st = 'failed'
                                THEN 'Upstream API timeout after ' || floor(random() * 60) || ' s' END""", "''"),
                    ("created_at", "t", None),
                    ("updated_at", "t + random() * interval '2 hours'", None),
                ])
                job_select = f"""
                    SELECT {job_values}
                    FROM (SELECT *, {status_pick} AS st FROM src) s2
                """
                cur.execute(
                    f"""
                    INSERT INTO public.automation_jobs ({job_cols})
                    WITH src AS (
                        SELECT md5('j:' || r.id)::uuid AS id, r.user_id, r.id AS audit_report_id, random() AS x,
                               r.created_at + random() * interval '3 days' AS t
                        FROM public.audit_reports r
                        WHERE random() < 0.27
                    )
                    {job_select}
                    ON CONFLICT DO NOTHING
                    """,
                    params,
                )
                cur.execute(
                    f"""
                    INSERT INTO public.automation_jobs ({job_cols})
                    WITH src AS (
                        SELECT md5('js:' || %(seed)s || ':' || g)::uuid AS id,
                               md5('u:' || %(seed)s || ':' || (1 + floor(random() * %(users)s)::int))::uuid AS user_id,
                               NULL::uuid AS audit_report_id, random() AS x,
                               now() - random() * interval '700 days' AS t
                        FROM generate_series(1, (%(reports)s * 3 / 100)) g
                    )
                    {job_select}
                    ON CONFLICT DO NOTHING
                    """,
                    params,
                )
                job_columns = _columns(cur, "automation_jobs")
                cols, values = _fit(cur, "generated_automations", [
                    ("id", "md5('a:' || n || ':' || j.id)::uuid", None),
                    ("job_id", "j.id", None),
                    ("name", f"{_pick(_VERBS)} || ' ' || {_pick(_WORDS)} || ' workflow'", None),
                    ("description", f"CASE WHEN random() < 0.8 THEN {_pick(_SENTENCES)} END", "''"),
                    ("platform", "j.automation_type" if "automation_type" in job_columns
                     else "(ARRAY['n8n','zapier','make'])[1 + floor(random() * 3)::int]", None),
                    ("workflow_json", f"""jsonb_build_object('nodes', jsonb_build_array(
                               jsonb_build_object('type', 'trigger', 'name', {_pick(_WORDS)}),
                               jsonb_build_object('type', 'action', 'name', {_pick(_VERBS)})),
                               'connections', floor(random() * 10)::int)""", None),
                    ("instructions",
                     f"'Import the JSON, set credentials for ' || {_pick(_WORDS)} || ', then activate.'", None),
                    ("created_at", "j.updated_at" if "updated_at" in job_columns else "j.created_at", None),
                ])
                cur.execute(
                    f"""
                    INSERT INTO public.generated_automations ({cols})
                    SELECT {values}
                    FROM public.automation_jobs j
                    CROSS JOIN LATERAL generate_series(1, CASE WHEN random() < 0.2 THEN 2 ELSE 1 END) n
                    WHERE j.status = 'completed'
                    ON CONFLICT DO NOTHING
                    """
                )
                if waitlist and _table_exists(cur, "public.waitlist"):
                    cur.execute(
                        """
                        INSERT INTO public.waitlist (id, email, user_id, created_at)
                        SELECT md5('w:' || %(seed)s || ':' || g)::uuid,
                               CASE WHEN g %% 2 = 0 THEN format('user%%s.s%%s@example-%%s.test', g, %(seed)s, g %% 97)
                                    ELSE format('prospect%%s.s%%s@example.test', g, %(seed)s) END,
                               CASE WHEN g %% 2 = 0 THEN md5('u:' || %(seed)s || ':' || g)::uuid END,
                               now() - random() * interval '900 days'
                        FROM generate_series(1, least(%(users)s, greatest(1, %(users)s * 3 / 10))) g
                        ON CONFLICT DO NOTHING
                        """,
                        params,
                    )
            conn.commit()
        except BaseException:
            conn.rollback()
            conn.autocommit = previous_autocommit
            raise
        conn.autocommit = True
        try:
            tables = ["auth.users", *(f"public.{t}" for t in TENANT_TABLES)]
            with conn.cursor() as cur:
                if _table_exists(cur, "public.waitlist"):
                    tables.append("public.waitlist")
                if vacuum or analyze:
                    verb = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
                    for table in tables:
                        schema, name = table.split(".")
                        cur.execute(sql.SQL(verb + " {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
            counts: dict[str, Any] = table_counts(conn, tables)
        finally:
            conn.autocommit = previous_autocommit
    counts["seconds"] = round(time.monotonic() - started, 2)
    return counts


def distribute_into_organizations(conn_or_dsn: Any, organizations: int, *, guest_every: int = 25,
                                  admin_every: int = 20, vacuum: bool = True) -> dict[str, Any]:
    """After the migration, an explicit act of sharing: spread users over ``organizations`` shared organizations.

    The migration leaves every user alone in a personal organization; this creates shared organizations
    (slugs ``org-00001`` ...) so that benchmarks and isolation tests have multi-member organizations. Every
    user becomes an active admin/member of exactly one shared organization (the first user of each and every
    ``admin_every``-th user are admins) and stays admin of their personal one; every ``guest_every``-th user
    is also an active *guest* of the next organization, and the one after that has a pending *invited*
    membership there. All rows of a user (profile, reports, jobs, waitlist entries) move to that shared
    organization; generated automations follow their job. Idempotent for the same ``organizations``.
    """
    if organizations < 1:
        raise ValueError("organizations must be >= 1")
    started = time.monotonic()
    with _connection(conn_or_dsn) as conn:
        previous_autocommit = conn.autocommit
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                _try_replica_mode(cur)
                cur.execute(
                    """
                    INSERT INTO public.organizations (slug, name, plan, settings)
                    SELECT format('org-%%s', lpad(g::text, 5, '0')),
                           (ARRAY['Acme','Globex','Initech','Umbrella','Hooli','Stark','Wayne','Tyrell'])[1 + g %% 8]
                               || ' ' || g,
                           (ARRAY['free','pro','enterprise'])[1 + g %% 3],
                           jsonb_build_object('seats', 5 + g %% 50, 'region', (ARRAY['eu','us'])[1 + g %% 2])
                    FROM generate_series(1, %(n)s) g
                    ON CONFLICT (slug) DO NOTHING
                    """,
                    {"n": organizations},
                )
                cur.execute(
                    """
                    CREATE TEMP TABLE _seed_orgs ON COMMIT DROP AS
                    SELECT id, (row_number() OVER (ORDER BY slug) - 1)::int AS n
                    FROM public.organizations
                    WHERE NOT is_default AND slug ~ '^org-[0-9]{5}$' AND substr(slug, 5)::int <= %(n)s
                    """,
                    {"n": organizations},
                )
                cur.execute("SELECT count(*) FROM _seed_orgs")
                n_orgs = cur.fetchone()[0]
                cur.execute(
                    """
                    CREATE TEMP TABLE _seed_users ON COMMIT DROP AS
                    SELECT u.id AS user_id, u.k, o.id AS org_id, o2.id AS second_org_id
                    FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1)::int AS k FROM auth.users) u
                    JOIN _seed_orgs o ON o.n = u.k %% %(n)s
                    JOIN _seed_orgs o2 ON o2.n = (u.k + 1) %% %(n)s
                    """,
                    {"n": n_orgs},
                )
                cur.execute("ALTER TABLE _seed_users ADD PRIMARY KEY (user_id)")
                cur.execute("ANALYZE _seed_users")
                # Personal memberships stay; only the shared organizations' memberships are (re)made.
                cur.execute("DELETE FROM public.organization_memberships WHERE organization_id IN "
                            "(SELECT id FROM _seed_orgs)")
                cur.execute(
                    """
                    INSERT INTO public.organization_memberships (organization_id, user_id, role, status,
                                                                 invited_at, accepted_at)
                    SELECT org_id, user_id,
                           CASE WHEN k < %(n)s OR k %% %(admin)s = 0 THEN 'admin' ELSE 'member' END,
                           'active', now() - interval '30 days', now() - interval '29 days'
                    FROM _seed_users
                    UNION ALL
                    SELECT second_org_id, user_id, 'guest', 'active', now() - interval '10 days',
                           now() - interval '9 days'
                    FROM _seed_users WHERE %(n)s > 1 AND k %% %(guest)s = 1
                    UNION ALL
                    SELECT second_org_id, user_id, 'member', 'invited', now() - interval '1 day', NULL
                    FROM _seed_users WHERE %(n)s > 1 AND k %% %(guest)s = 2
                    """,
                    {"n": n_orgs, "admin": admin_every, "guest": guest_every},
                )
                moved = {}
                for table, key in (("profiles", "id"), ("audit_reports", "user_id"),
                                   ("automation_jobs", "user_id")):
                    cur.execute(
                        sql.SQL(
                            "UPDATE public.{t} x SET organization_id = s.org_id FROM _seed_users s "
                            "WHERE x.{k} = s.user_id AND x.organization_id IS DISTINCT FROM s.org_id"
                        ).format(t=sql.Identifier(table), k=sql.Identifier(key))
                    )
                    moved[table] = cur.rowcount
                cur.execute(
                    "UPDATE public.generated_automations g SET organization_id = j.organization_id "
                    "FROM public.automation_jobs j WHERE j.id = g.job_id "
                    "AND g.organization_id IS DISTINCT FROM j.organization_id"
                )
                moved["generated_automations"] = cur.rowcount
                if _table_exists(cur, "public.waitlist") and _column_exists(cur, "waitlist", "organization_id"):
                    cur.execute(
                        "UPDATE public.waitlist w SET organization_id = s.org_id FROM _seed_users s "
                        "WHERE w.user_id = s.user_id AND w.organization_id IS DISTINCT FROM s.org_id"
                    )
                    moved["waitlist"] = cur.rowcount
            conn.commit()
        except BaseException:
            conn.rollback()
            conn.autocommit = previous_autocommit
            raise
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                verb = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
                tables = [*TENANT_TABLES, "organizations", "organization_memberships"]
                if _table_exists(cur, "public.waitlist"):
                    tables.append("waitlist")
                for table in tables:
                    cur.execute(sql.SQL(verb + " public.{}").format(sql.Identifier(table)))
                cur.execute("SELECT count(*) FROM public.organization_memberships")
                memberships = cur.fetchone()[0]
        finally:
            conn.autocommit = previous_autocommit
    return {"organizations": n_orgs, "memberships": memberships, "moved": moved,
            "seconds": round(time.monotonic() - started, 2)}
