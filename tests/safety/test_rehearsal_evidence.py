"""The rehearsal judges what the migration does: broken bundles caught at the rehearsal stage, object named.

Each defect is appended to the project's bundle as the statement a team could have written (idempotent, so
that the forward files still run twice and every later stage is reached).
"""

import pytest

from .conftest import query
from .test_rehearsal import rehearse_cli

SCHEMA = "20250904000001_add_multi_tenant_organizations.sql"
RLS = "20250904000002_add_organization_rls_policies.sql"
DATA = "20250904000003_migrate_existing_data_to_organizations.sql"
VALIDATION = "test-multi-tenant-migration.sql"


pytestmark = pytest.mark.usefixtures("small_access_sample")

def append(path, sql: str) -> None:
    path.write_text(path.read_text() + "\n" + sql.strip() + "\n")


def verdicts(data, key, stage=None) -> list[dict]:
    return [v for v in data["verdicts"] if v["key"] == key and (stage is None or v["stage"] == stage)]


def not_met(data, key, stage=None) -> list[dict]:
    return [v for v in verdicts(data, key, stage) if not v["passed"]]


def test_several_defects_are_each_caught_at_their_stage_with_the_object_named(demo_target, bundle_copy):
    # 0001: a volatile default rewrites audit_reports (relfilenode changes, ACCESS EXCLUSIVE throughout).
    append(bundle_copy / SCHEMA, "ALTER TABLE public.audit_reports ADD COLUMN IF NOT EXISTS reviewed_at timestamptz "
                                 "DEFAULT clock_timestamp();")
    # 0002: NULL organization visible to every member until 0003 has filled it.
    # …and a strong lock held for seconds (as a slow statement under ACCESS EXCLUSIVE would): writers wait.
    append(bundle_copy / RLS, """
        DROP POLICY IF EXISTS team_unassigned_reports ON public.audit_reports;
        CREATE POLICY team_unassigned_reports ON public.audit_reports FOR SELECT TO authenticated
            USING (organization_id IS NULL);
        BEGIN;
        LOCK TABLE public.audit_reports IN ACCESS EXCLUSIVE MODE;
        SELECT pg_sleep(4);
        COMMIT;""")
    # 0003: a non-concurrent index build (writers wait for it), a backfill that touches every row again (the
    # updated_at trigger rewrites updated_at; the heap doubles), every legacy user admin of one organization.
    append(bundle_copy / DATA, """
        CREATE INDEX IF NOT EXISTS idx_audit_reports_title ON public.audit_reports (title);
        UPDATE public.audit_reports SET organization_id = organization_id;
        INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
        SELECT (SELECT min(id::text)::uuid FROM public.organizations), u.id, 'admin', 'active' FROM auth.users u
        ON CONFLICT (organization_id, user_id) DO UPDATE SET role = 'admin';""")

    code, data = rehearse_cli(demo_target, bundle_copy)
    assert code == 1 and data["passed"] is False and data["evidence_passed"] is False

    rewrite = not_met(data, "rewrite", f"after {SCHEMA}")
    assert rewrite and "public.audit_reports rewritten" in rewrite[0]["message"]
    assert not not_met(data, "rewrite", f"after {RLS}")

    exposed = not_met(data, "access", f"after {RLS}")
    assert exposed and "gains read on public.audit_reports" in exposed[0]["message"]
    leak = not_met(data, "probes", f"after {RLS}")
    assert leak and "read audit_reports: leak" in leak[0]["message"]
    final_probes = not_met(data, "probes", "after the forward files")
    assert "leak" not in final_probes[0]["message"], "0003 closed the window: only the state between leaks"

    waits = not_met(data, "writer")
    assert waits and f"for a lock, during {RLS}" in waits[0]["message"]
    held = not_met(data, "strong_locks", f"after {RLS}")
    assert held and "AccessExclusiveLock on public.audit_reports held about" in held[0]["message"]
    assert not not_met(data, "strong_locks", f"after {SCHEMA}")

    blocks = not_met(data, "writer_blocks", f"after {DATA}")
    assert blocks and "ShareLock on public.audit_reports" in blocks[0]["message"]
    assert any("idx_audit_reports_title" in b["statement"] and b["mode"] == "ShareLock"
               for b in blocks[0]["evidence"]["blocks"])

    contents = not_met(data, "contents")
    assert contents and "public.audit_reports: 2000 row(s) changed in updated_at" in contents[0]["message"]

    size = not_met(data, "size")
    assert size and "beyond what their added columns need" in size[0]["message"]

    roles = not_met(data, "role_model")
    assert roles and "with other members" in roles[0]["message"]
    # …and the probes no longer say "n/a — already admin": being admin of a shared organization is the finding.
    assert "already admin of organization" in final_probes[0]["message"]
    # The target itself was not touched.
    assert query(demo_target, "SELECT to_regclass('public.organizations')") == [(None,)]


def test_validation_that_always_passes_does_not_hide_using_true(demo_target, bundle_copy):
    (bundle_copy / VALIDATION).write_text("""
        DO $$ BEGIN
            RAISE NOTICE 'RESULT: Schema tests PASSED';
            RAISE NOTICE 'RESULT: RLS Policies tests PASSED';
            RAISE NOTICE 'RESULT: Data Migration tests PASSED';
        END $$;""")
    append(bundle_copy / RLS, """
        DROP POLICY IF EXISTS everyone_reads_reports ON public.audit_reports;
        CREATE POLICY everyone_reads_reports ON public.audit_reports FOR SELECT TO authenticated USING (true);""")
    code, data = rehearse_cli(demo_target, bundle_copy)
    assert verdicts(data, "validation")[0]["passed"] is True
    assert code == 1 and data["passed"] is False and data["evidence_passed"] is False
    audit = not_met(data, "rls_audit")
    assert audit and "policy everyone_reads_reports on public.audit_reports" in audit[0]["message"]
    assert not_met(data, "probes", "after the forward files")


def test_a_schema_only_rehearsal_whose_seeding_fails_is_not_passed(target_factory):
    prod = target_factory(environment="production")
    # An installation column the seeder does not know: NOT NULL without a default.
    query(prod, "ALTER TABLE public.audit_reports ADD COLUMN department text NOT NULL DEFAULT 'x'")
    query(prod, "ALTER TABLE public.audit_reports ALTER COLUMN department DROP DEFAULT")
    code, data = rehearse_cli(prod)
    assert code == 1 and data["passed"] is False
    seeding = not_met(data, "data", "copy")
    assert seeding and seeding[0]["message"].startswith("SCHEMA-ONLY COPY WITHOUT DATA: synthetic seeding failed")
    assert "department" in seeding[0]["message"]
