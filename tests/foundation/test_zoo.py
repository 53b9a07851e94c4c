"""The target zoo: each shape builds, seeds and keeps its promise (checked in the catalog of a real database)."""

import uuid

import psycopg
import pytest

from controlpanel.targets import zoo
from tests.helpers import targets as target_support

USERS, REPORTS = 30, 300
TENANT = ("profiles", "audit_reports", "automation_jobs", "generated_automations")


@pytest.fixture(scope="module")
def built():
    """shape set -> BuiltTarget of a fresh copy of its (shared, cached) template; dropped afterwards."""
    made = {}

    def get(shapes) -> zoo.BuiltTarget:
        key = zoo.normalize_shapes(shapes)
        if key not in made:
            template = zoo.ensure_template(key, users=USERS, reports=REPORTS, server=target_support.dsn("postgres"))
            made[key] = zoo.clone_target(template.admin_dsn, f"cp_t_zoo_{uuid.uuid4().hex[:8]}")
        return made[key]

    yield get
    for target in made.values():
        zoo.drop_target(target.admin_dsn)


def rows(dsn, query, params=()):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def columns(dsn, table):
    return {name: (notnull, default) for name, notnull, default in rows(dsn, """
        SELECT a.attname, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped""", (f"public.{table}",))}


def policy_names(dsn):
    return {r[0] for r in rows(dsn, "SELECT policyname FROM pg_policies WHERE schemaname = 'public'")}


def test_shapes_compose_in_one_canonical_order():
    assert zoo.normalize_shapes("platform,strict") == ("baseline", "strict", "platform")
    assert zoo.normalize_shapes(["strict", "minimal"]) == ("minimal", "strict")
    with pytest.raises(zoo.ZooError):
        zoo.normalize_shapes("baseline,minimal")
    with pytest.raises(zoo.ZooError):
        zoo.normalize_shapes("platform,bogus")


def test_baseline_is_todays_baseline(built):
    target = built("baseline")
    assert target.dsn == target.admin_dsn and not target.platform
    assert "Users can view own reports" in policy_names(target.dsn)
    counts = rows(target.dsn, "SELECT (SELECT count(*) FROM public.audit_reports), "
                              "(SELECT count(*) FROM public.waitlist)")[0]
    assert counts[0] == REPORTS and counts[1] > 0


def test_minimal_has_only_the_contracts_columns_and_other_policy_names(built):
    target = built("minimal")
    assert set(columns(target.dsn, "profiles")) == {"id"}
    assert set(columns(target.dsn, "audit_reports")) == {"id", "user_id", "created_at"}
    assert set(columns(target.dsn, "automation_jobs")) == {"id", "user_id", "audit_report_id", "status", "created_at"}
    assert set(columns(target.dsn, "generated_automations")) == {"id", "job_id", "created_at"}
    assert rows(target.dsn, "SELECT to_regclass('public.waitlist'), to_regprocedure('public.handle_updated_at()')"
                ) == [(None, "handle_updated_at()")]
    names = policy_names(target.dsn)
    assert not names & policy_names(built("baseline").dsn)
    # every tenant table still has an owner policy on auth.uid() beside the service_role ones
    owner_tables = {r[0] for r in rows(target.dsn, "SELECT tablename FROM pg_policies WHERE schemaname = 'public' "
                                                   "AND coalesce(qual, with_check) LIKE '%%auth.uid()%%'")}
    assert owner_tables == set(TENANT)
    assert rows(target.dsn, "SELECT count(*) FROM public.automation_jobs WHERE status = 'completed'")[0][0] > 0


@pytest.mark.parametrize("schema", ["baseline", "minimal"])
def test_strict_constrains_what_exists(built, schema):
    target = built((schema, "strict"))
    strict_cols = {"audit_reports": ("process_description", "title"), "generated_automations": ("platform",
                   "workflow_json"), "automation_jobs": ("automation_type", "workflow_data")}
    for table, names in strict_cols.items():
        present = columns(target.dsn, table)
        for name in names:
            if schema == "baseline":
                assert present[name] == (True, None), f"{table}.{name} is not NOT NULL without a default"
            else:
                assert name not in present
    for table in TENANT:
        for name, (_, default) in columns(target.dsn, table).items():
            if name in ("created_at", "updated_at"):
                assert default == "timezone('utc'::text, now())"
    checks = {r[0] for r in rows(target.dsn, "SELECT conname FROM pg_constraint WHERE contype = 'c' AND "
                                             "connamespace = 'public'::regnamespace")}
    assert "automation_jobs_status_valid" in checks
    if schema == "baseline":
        assert {"automation_jobs_type_valid", "generated_automations_platform_valid"} <= checks
        assert rows(target.dsn, "SELECT count(*) FROM public.automation_jobs WHERE workflow_data IS NULL") == [(0,)]
    with psycopg.connect(target.admin_dsn, autocommit=True) as conn:
        job = conn.execute("SELECT id FROM public.automation_jobs LIMIT 1").fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE public.automation_jobs SET status = 'archived' WHERE id = %s", (job,))
        assert conn.execute("SELECT count(*) FROM public.job_status_summary").fetchone()[0] > 0
        # the signup trigger creates a profile, with the NOT NULL columns filled
        with conn.transaction(force_rollback=True):
            user = conn.execute("INSERT INTO auth.users (email) VALUES ('zoo-signup@example.test') RETURNING id"
                                ).fetchone()[0]
            assert conn.execute("SELECT count(*) FROM public.profiles WHERE id = %s", (user,)).fetchone() == (1,)


def test_platform_connects_as_a_non_superuser_that_owns_public_but_not_auth(built):
    target = built(("platform", "strict"))
    roles = target.roles
    assert target.connect_role == roles.migration != "postgres" and target.admin_dsn != target.dsn
    attrs = rows(target.admin_dsn, "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolcanlogin "
                                   "FROM pg_roles WHERE rolname = %s", (roles.migration,))
    assert attrs == [(False, True, True, True, True)]
    granted = {r[0] for r in rows(target.admin_dsn, "SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b "
                                                    "ON b.oid = m.roleid WHERE m.member = %s::regrole",
                                  (roles.migration,))}
    assert granted >= set(zoo.API_ROLES)
    owners = dict(rows(target.admin_dsn, """
        SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'auth') AND c.relkind IN ('r', 'v')"""))
    assert {owners[f"public.{t}"] for t in (*TENANT, "audit_stats", "job_status_summary")} == {roles.migration}
    assert owners["auth.users"] == roles.auth_admin
    assert rows(target.admin_dsn, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname IN "
                                  "('auth', 'public') ORDER BY nspname") == [(roles.auth_admin,), (roles.migration,)]
    assert rows(target.admin_dsn, "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'auth.uid()'::regprocedure"
                ) == [(roles.auth_admin,)]
    assert rows(target.admin_dsn, "SELECT extname, extnamespace::regnamespace::text FROM pg_extension "
                                  "WHERE extname IN ('pgcrypto', 'uuid-ossp') ORDER BY 1"
                ) == [("pgcrypto", "extensions"), ("uuid-ossp", "extensions")]
    with psycopg.connect(target.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT current_user, current_setting('is_superuser')").fetchone() == (
            roles.migration, "off")
        privileges = conn.execute(
            "SELECT has_schema_privilege('auth', 'USAGE'), has_function_privilege('auth.uid()', 'EXECUTE'), "
            "has_table_privilege('auth.users', 'SELECT'), has_table_privilege('auth.users', 'REFERENCES'), "
            "has_table_privilege('auth.users', 'TRIGGER'), pg_has_role(%s, 'USAGE')", (roles.auth_admin,)).fetchone()
        assert privileges == (True, True, True, True, True, False)
        # the trap: a trigger on auth.users can be created by this role but not dropped
        conn.execute("CREATE TRIGGER zoo_probe AFTER INSERT ON auth.users FOR EACH ROW "
                     "EXECUTE FUNCTION public.handle_updated_at()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
            conn.execute("DROP TRIGGER zoo_probe ON auth.users")
        # extensions resolve through the role's search_path; new tables get the API roles' default privileges
        conn.execute("CREATE TABLE public.zoo_probe (id uuid PRIMARY KEY DEFAULT uuid_generate_v4())")
        assert conn.execute("SELECT has_table_privilege('anon', 'public.zoo_probe', 'SELECT'), "
                            "has_table_privilege('authenticated', 'public.zoo_probe', 'INSERT')").fetchone() == (
            True, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE auth.users ADD COLUMN zoo_probe text")


def test_a_clone_keeps_the_templates_owners_and_roles(built):
    target = built("platform")
    assert rows(target.admin_dsn, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
                ) == [(target.roles.migration,)]
    assert target.roles == zoo.PlatformRoles.for_prefix(zoo.TEMPLATE_PREFIX)


def test_building_a_named_target_and_dropping_it_drops_its_roles():
    name = f"zoo_t_{uuid.uuid4().hex[:8]}"
    target = zoo.build_target(target_support.dsn(name), "platform", users=5, reports=20)
    try:
        assert target.roles.migration == f"{name}_postgres"
        with pytest.raises(zoo.ZooError, match="exists"):
            zoo.build_target(target_support.dsn(name), "platform")
        assert rows(target.dsn, "SELECT count(*) FROM public.audit_reports") == [(20,)]
    finally:
        zoo.drop_target(target.admin_dsn)
    assert rows(target_support.dsn("postgres"), "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s",
                (f"{name}%",)) == [(0,)]


SUBJECT = "6a3f2b1c-0000-4000-8000-000000000001"
OTHER = "6a3f2b1c-0000-4000-8000-000000000002"
READS_SUB = {"sub", "sub-nullif", "sub-then-claims", "sub-then-claims-nullif", "claims-then-sub",
             "claims-then-sub-nullif"}
READS_CLAIMS = {v for v in zoo.UID_VARIANTS if "claims" in v}


@pytest.fixture(scope="module")
def variant_targets():
    """One unseeded database per auth.uid() variant, built by the builder's option."""
    made = {v: zoo.build_target(target_support.dsn(f"zoo_uid_{uuid.uuid4().hex[:8]}"), "minimal", uid_variant=v)
            for v in zoo.UID_VARIANTS}
    yield made
    for target in made.values():
        zoo.drop_target(target.admin_dsn)


def _uid(dsn, settings: dict):
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        return conn.execute("SELECT auth.uid()::text").fetchone()[0]


@pytest.mark.parametrize("variant", list(zoo.UID_VARIANTS))
def test_each_uid_variant_reads_what_its_definition_says(variant_targets, variant):
    dsn = variant_targets[variant].dsn
    claims = '{"sub": "%s", "role": "authenticated"}'
    assert _uid(dsn, {"request.jwt.claim.sub": SUBJECT}) == (SUBJECT if variant in READS_SUB else None)
    assert _uid(dsn, {"request.jwt.claims": claims % SUBJECT}) == (SUBJECT if variant in READS_CLAIMS else None)
    both = _uid(dsn, {"request.jwt.claim.sub": SUBJECT, "request.jwt.claims": claims % OTHER})
    assert both == {"sub": SUBJECT, "sub-nullif": SUBJECT, "claims": OTHER, "claims-nullif": OTHER}.get(
        variant, SUBJECT if variant.startswith("sub") else OTHER)
    empty = {"request.jwt.claim.sub": "", "request.jwt.claims": ""}
    if variant.endswith("nullif"):
        assert _uid(dsn, empty) is None
    else:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            _uid(dsn, empty)


def test_concurrent_sessions_build_a_template_once():
    """Several sessions asking for the same new template at once: one builds it, the others wait and reuse it."""
    from concurrent.futures import ThreadPoolExecutor

    unique = (f"COMMENT ON SCHEMA public IS 'zoo lock test {uuid.uuid4().hex}'",)  # a content no one has built

    def ask(_):
        return zoo.ensure_template("minimal", users=2, reports=5, extra_sql=unique,
                                   server=target_support.dsn("postgres"))

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(ask, range(3)))
    try:
        assert len({r.name for r in results}) == 1
        assert sorted(r.info["built_now"] for r in results) == [False, False, True]
    finally:
        zoo.drop_target(results[0].admin_dsn)


def test_the_seeder_names_a_required_column_it_cannot_fill():
    name = f"zoo_t_{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError, match="public.audit_reports requires columns the seeder cannot fill: zoo_x"):
        zoo.build_target(target_support.dsn(name), "minimal", users=3, reports=5,
                         extra_sql=["ALTER TABLE public.audit_reports ADD COLUMN zoo_x text NOT NULL"])
    assert rows(target_support.dsn("postgres"), "SELECT count(*) FROM pg_database WHERE datname = %s",
                (name,)) == [(0,)]  # a failed build leaves nothing behind


def test_the_build_target_command_prints_both_dsns_and_no_password():
    from io import StringIO

    from django.core.management import call_command

    name = f"zoo_t_{uuid.uuid4().hex[:8]}"
    out = StringIO()
    try:
        call_command("build_target", shape="platform,minimal", users=3, reports=10, name=name,
                     uid_variant="claims", stdout=out)
        text = out.getvalue()
        assert f"panel and bundle DSN: postgresql://{name}_postgres@127.0.0.1:5432/{name}" in text
        assert f"superuser DSN:        postgresql://postgres@127.0.0.1:5432/{name}" in text
        assert "minimal+platform, auth.uid() claims" in text and "password" not in text
    finally:
        zoo.drop_target(target_support.dsn(name))
