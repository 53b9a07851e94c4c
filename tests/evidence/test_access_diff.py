"""The access diff on real targets: the same subjects before and after a bundle; broken bundles are named."""

import uuid

import psycopg
import pytest

from controlpanel.evidence.access import AccessDiff, AccessMap, diff_access, measure_access
from controlpanel.targets.catalog import schema_fingerprint, table_counts
from tests.helpers import targets as target_support

from .conftest import execute

SUBJECTS = 24  # a stratified sample keeps each measurement to a second or two


@pytest.fixture(autouse=True)
def _sample(settings):
    settings.ACCESS_ALL_USERS_UP_TO = 10
    settings.ACCESS_SAMPLE_USERS = SUBJECTS


def _measure(dsn, subjects=None) -> AccessMap:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return measure_access(conn, subjects)


@pytest.fixture(scope="session")
def before_map(target_template, django_db_blocker):
    """The baseline's access map, measured once on a throwaway copy (the subjects are chosen here)."""
    from django.test import override_settings

    copy = target_support.clone(target_template, f"cp_acc_before_{uuid.uuid4().hex[:8]}")
    try:
        with override_settings(ACCESS_ALL_USERS_UP_TO=10, ACCESS_SAMPLE_USERS=SUBJECTS):
            yield _measure(copy)
    finally:
        target_support.drop(copy)


@pytest.fixture(scope="session")
def bundle_template(target_template):
    """The baseline migrated by the bundle in main, as psql runs it (cloned by each test)."""
    name = f"cp_acc_bundle_{uuid.uuid4().hex[:8]}"
    copy = target_support.clone(target_template, name)
    try:
        target_support.apply_bundle(copy)
        yield name
    finally:
        target_support.drop(copy)


# Until the bundle in main gives every user a personal organization (issue 11, engineer "bundle"), the broken
# cases start from that isolating state built on top of it: one organization per user, the user its admin,
# holding their rows. On a bundle that already does so it only adds a second personal organization per user.
PERSONAL_ORGANIZATIONS = """
SET session_replication_role = replica;
CREATE TEMP TABLE accessdiff_personal AS SELECT u.id AS user_id, gen_random_uuid() AS org_id FROM auth.users u;
INSERT INTO public.organizations (id, slug, name)
    SELECT org_id, 'accessdiff-' || replace(user_id::text, '-', ''), 'Personal' FROM accessdiff_personal;
DELETE FROM public.organization_memberships;
INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
    SELECT org_id, user_id, 'admin', 'active' FROM accessdiff_personal;
UPDATE public.profiles t SET organization_id = p.org_id FROM accessdiff_personal p WHERE p.user_id = t.id;
UPDATE public.audit_reports t SET organization_id = p.org_id FROM accessdiff_personal p WHERE p.user_id = t.user_id;
UPDATE public.automation_jobs t SET organization_id = p.org_id FROM accessdiff_personal p
    WHERE p.user_id = t.user_id;
UPDATE public.generated_automations g SET organization_id = j.organization_id FROM public.automation_jobs j
    WHERE j.id = g.job_id;
UPDATE public.waitlist t SET organization_id = p.org_id FROM accessdiff_personal p WHERE p.user_id = t.user_id;
"""


@pytest.fixture(scope="session")
def isolated_template(bundle_template):
    name = f"cp_acc_isolated_{uuid.uuid4().hex[:8]}"
    copy = target_support.clone(bundle_template, name)
    try:
        execute(copy, PERSONAL_ORGANIZATIONS)
        yield name
    finally:
        target_support.drop(copy)


@pytest.fixture
def migrated(target_factory, isolated_template, target_dsn):
    return target_dsn(target_factory(template=isolated_template))


def exposures(diff: AccessDiff, relation, action=None):
    return [d for d in diff.exposures if d.relation == f"public.{relation}" and action in (None, d.action)]


def test_the_baseline_measures_every_exposed_relation_and_subject(before_map):
    assert not before_map.error and not [c for c in before_map.cells if c.error]
    names = {r["name"] for r in before_map.relations}
    assert {"public.profiles", "public.audit_reports", "public.automation_jobs", "public.generated_automations",
            "public.audit_stats", "public.waitlist"} <= names
    view = next(r for r in before_map.relations if r["name"] == "public.audit_stats")
    assert view["key"] == "md5 of the whole row"
    kinds = [s.key for s in before_map.subjects]
    assert kinds[-3:] == ["anon", "authenticated", "service_role"] and len(kinds) == SUBJECTS + 3
    assert {"most rows", "fewest rows"} <= {s.stratum for s in before_map.subjects}
    heavy = next(s for s in before_map.subjects if s.stratum == "most rows")
    own = next(c for c in before_map.cells if c.subject == heavy.key and c.relation == "public.audit_reports"
               and c.action == "read")
    assert own.count > 0 and own.untied == 0  # before the migration a user reads their own reports only
    assert AccessMap.from_dict(before_map.as_dict()) == before_map


def test_personal_organizations_give_no_one_more_or_less_than_before(before_map, migrated):
    diff = diff_access(before_map, _measure(migrated, before_map.subjects))
    assert diff.no_loss and not [d for d in diff.exposures if d.action in ("read", "update", "delete")], [
        d for d in diff.differences if d.kind in ("exposure", "loss", "cannot_measure")][:3]
    # More over one's own rows (the bundle lets users delete their own jobs) is shown, not an exposure.
    assert all(d.kind != "exposure" or d.action in ("insert_as_other", "update_moves") for d in diff.differences)


def test_the_bundle_in_main_on_the_demo_target(before_map, target_factory, bundle_template, target_dsn):
    """Personal organizations: nobody gains or loses anything. One shared organization (main before issue 11's
    bundle landed): every sampled user is named reading all 2,000 reports."""
    dsn = target_dsn(target_factory(template=bundle_template))
    with psycopg.connect(dsn, autocommit=True) as conn:
        organizations = conn.execute("SELECT count(*) FROM public.organizations").fetchone()[0]
    diff = diff_access(before_map, _measure(dsn, before_map.subjects))
    if organizations > 1:
        assert diff.passed, [d for d in diff.differences if d.kind in ("exposure", "loss", "cannot_measure")][:3]
    else:
        reads = exposures(diff, "audit_reports", "read")
        assert len(reads) == SUBJECTS and {d.after for d in reads} == {2000}


def test_one_shared_organization_for_everyone_is_an_exposure_named_with_counts(before_map, migrated):
    # Everyone a member of one organization that holds every row: the migration in main before issue 11.
    execute(migrated, """
        SET session_replication_role = replica;
        INSERT INTO public.organizations (slug, name) VALUES ('accessdiff-shared', 'Shared') ON CONFLICT DO NOTHING;
        INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
            SELECT o.id, u.id, 'member', 'active' FROM auth.users u, public.organizations o
            WHERE o.slug = 'accessdiff-shared' ON CONFLICT DO NOTHING;
        UPDATE public.audit_reports SET organization_id = (SELECT id FROM public.organizations
                                                           WHERE slug = 'accessdiff-shared');
        UPDATE public.automation_jobs SET organization_id = (SELECT id FROM public.organizations
                                                             WHERE slug = 'accessdiff-shared');
    """)
    diff = diff_access(before_map, _measure(migrated, before_map.subjects))
    assert not diff.no_gain
    reads = exposures(diff, "audit_reports", "read")
    assert len(reads) == SUBJECTS  # every sampled user
    assert all(d.after == 2000 and d.gained >= 2000 - d.before and d.gained_examples for d in reads)
    assert exposures(diff, "audit_reports", "delete") and exposures(diff, "automation_jobs", "update")
    assert AccessDiff.from_dict(diff.as_dict()).as_dict() == diff.as_dict()


def test_rows_without_an_organization_visible_to_everyone_are_named(before_map, migrated):
    execute(migrated, """
        CREATE POLICY accessdiff_null_org ON public.audit_reports FOR SELECT TO authenticated
            USING (organization_id IS NULL);
        ALTER TABLE public.audit_reports ALTER COLUMN organization_id DROP NOT NULL;
        SET session_replication_role = replica;
        UPDATE public.audit_reports SET organization_id = NULL
        WHERE id IN (SELECT id FROM public.audit_reports ORDER BY id LIMIT 30);
    """)
    diff = diff_access(before_map, _measure(migrated, before_map.subjects))
    reads = exposures(diff, "audit_reports", "read")
    assert reads and all(d.gained >= 25 for d in reads)  # 30 rows, minus the subject's own among them
    assert not exposures(diff, "automation_jobs", "read")


def test_using_true_on_one_table_exposes_that_table_only(before_map, migrated):
    execute(migrated, "CREATE POLICY accessdiff_open ON public.automation_jobs FOR SELECT TO authenticated "
                      "USING (true)")
    diff = diff_access(before_map, _measure(migrated, before_map.subjects))
    reads = exposures(diff, "automation_jobs", "read")
    assert len(reads) == SUBJECTS + 1  # every user, and authenticated without a user
    assert {d.after for d in reads} == {600}
    assert not exposures(diff, "audit_reports", "read") and not exposures(diff, "profiles", "read")


def test_an_update_policy_that_lets_a_row_move_to_another_organization(before_map, migrated):
    base = diff_access(before_map, _measure(migrated, before_map.subjects))
    assert not [d for d in exposures(base, "audit_reports", "update_moves") if "organization_id" in d.gained_examples]
    execute(migrated, """
        DO $$ DECLARE p record; BEGIN
            FOR p IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'audit_reports'
                     AND cmd = 'UPDATE' LOOP
                EXECUTE format('DROP POLICY %I ON public.audit_reports', p.policyname);
            END LOOP; END $$;
        CREATE POLICY accessdiff_move ON public.audit_reports FOR UPDATE TO authenticated
            USING (organization_id = ANY (ARRAY(SELECT public.user_organization_ids()))) WITH CHECK (true);
        INSERT INTO public.organizations (slug, name) VALUES ('accessdiff-elsewhere', 'Elsewhere');
    """)
    diff = diff_access(before_map, _measure(migrated, before_map.subjects))
    moves = [d for d in exposures(diff, "audit_reports", "update_moves") if "organization_id" in d.gained_examples]
    assert moves and all(d.before == 0 for d in moves)


def test_own_rows_left_invisible_are_a_loss_of_history(before_map, migrated):
    heavy = next(s for s in before_map.subjects if s.stratum == "most rows")
    execute(migrated, """
        SET session_replication_role = replica;
        INSERT INTO public.organizations (slug, name) VALUES ('accessdiff-limbo', 'Nobody''s');
        UPDATE public.audit_reports SET organization_id = (SELECT id FROM public.organizations
                                                           WHERE slug = 'accessdiff-limbo')
        WHERE user_id = %s;
    """.replace("%s", f"'{heavy.user_id}'"))
    diff = diff_access(before_map, _measure(migrated, before_map.subjects))
    losses = [d for d in diff.losses if d.subject == heavy.key and d.relation == "public.audit_reports"]
    assert {d.action for d in losses} >= {"read", "update", "delete"}
    read = next(d for d in losses if d.action == "read")
    assert read.after == 0 and read.lost == read.before > 0 and read.lost_examples
    assert not diff.no_loss


def test_a_probe_the_bundle_breaks_is_cannot_measure_not_a_crash(before_map, migrated):
    execute(migrated, "CREATE POLICY accessdiff_recursive ON public.organization_memberships FOR SELECT "
                      "TO authenticated USING (EXISTS (SELECT 1 FROM public.organization_memberships m "
                      "WHERE m.user_id = auth.uid()))")
    after = _measure(migrated, before_map.subjects)
    broken = [c for c in after.cells if c.error and c.relation == "public.organization_memberships"]
    assert broken and all("42P17" in c.error for c in broken if c.action == "read")
    diff = diff_access(before_map, after)
    assert diff.unmeasured and not diff.no_gain and not diff.no_loss


def test_probing_leaves_the_target_unchanged(before_map, migrated):
    tables = ["auth.users", "profiles", "audit_reports", "automation_jobs", "generated_automations",
              "organizations", "organization_memberships", "waitlist"]
    with psycopg.connect(migrated, autocommit=True) as conn:
        fingerprint, counts = schema_fingerprint(conn), table_counts(conn, tables)
        digest = conn.execute("SELECT md5(string_agg(md5(r::text), ',' ORDER BY r.id)) FROM public.audit_reports r"
                              ).fetchone()[0]
        after = measure_access(conn, before_map.subjects)
        assert not after.error
        assert schema_fingerprint(conn) == fingerprint and table_counts(conn, tables) == counts
        assert conn.execute("SELECT md5(string_agg(md5(r::text), ',' ORDER BY r.id)) FROM public.audit_reports r"
                            ).fetchone()[0] == digest


def test_users_probed_side_by_side_give_the_same_map_as_one_session(before_map, migrated, settings):
    # The shared-organization defect: every user reaches every row, so sessions probe (and lock) the same rows.
    execute(migrated, """
        INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
        SELECT (SELECT id FROM public.organizations ORDER BY id LIMIT 1), u.id, 'member', 'active' FROM auth.users u
        ON CONFLICT DO NOTHING;
    """)
    settings.ACCESS_PROBE_SESSIONS = 1
    one = _measure(migrated, before_map.subjects)
    settings.ACCESS_PROBE_SESSIONS = 3
    opened = []

    def more():
        opened.append(1)
        return psycopg.connect(migrated, autocommit=True)

    with psycopg.connect(migrated, autocommit=True) as conn:
        three = measure_access(conn, before_map.subjects, connect=more)
    assert len(opened) == 2 and not three.error
    assert [s.key for s in three.subjects] == [s.key for s in one.subjects]
    assert three.cells == one.cells
    assert diff_access(before_map, three).exposures  # the defect is seen through the side-by-side probes too
