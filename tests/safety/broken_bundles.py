"""A library of broken bundles: each a small edit of the project's own bundle, the stage that must catch it,
and what the catch must name. `apply(bundle_dir, broken)` edits a `bundle_copy`.

Stages: "preflight" (run_preflight says NO-GO and names the object), "static" (the RLS audit after the forward
files reports a blocking finding new since before, naming the object), "plpgsql_check" (check_functions on
the functions the bundle creates reports an error).
"""

from dataclasses import dataclass
from pathlib import Path

SCHEMA = "20250904000001_add_multi_tenant_organizations.sql"
POLICIES = "20250904000002_add_organization_rls_policies.sql"
DATA = "20250904000003_migrate_existing_data_to_organizations.sql"


@dataclass(frozen=True)
class Broken:
    name: str
    stage: str
    edits: tuple[tuple[str, str, str], ...]  # (file, old, new): old must occur in the file
    expect: tuple[tuple[str, str], ...]  # (check key or finding code, text the evidence/object must contain)


def _before_commit(sql: str) -> tuple[str, str, str]:
    return "COMMIT;\n\nRESET lock_timeout;", f"{sql}\nCOMMIT;\n\nRESET lock_timeout;"


AUDIT_SELECT = ("CREATE POLICY mt_audit_reports_select ON public.audit_reports FOR SELECT TO authenticated\n"
                "    USING (organization_id = ANY (ARRAY(SELECT public.user_organization_ids())));")
JOBS_SELECT = ("CREATE POLICY mt_automation_jobs_select ON public.automation_jobs FOR SELECT TO authenticated\n"
               "    USING (organization_id = ANY (ARRAY(SELECT public.user_organization_ids())));")
MEMBERS_SELECT = ("USING (user_id = (SELECT auth.uid())\n"
                  "           OR organization_id = ANY (ARRAY(SELECT public.user_organization_ids())));")
MEMBERS_INSERT = ("FOR INSERT TO authenticated\n"
                  "    WITH CHECK (organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids())));")
ORGS_UPDATE = ("CREATE POLICY mt_organizations_update ON public.organizations FOR UPDATE TO authenticated\n"
               "    USING (id = ANY (ARRAY(SELECT public.user_admin_organization_ids())))")
WRITABLE = "organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))"
REPORTS_UPDATE_CHECK = (f"    USING ({WRITABLE})\n    WITH CHECK ({WRITABLE});\n"
                        "DROP POLICY IF EXISTS mt_audit_reports_delete")
DEFAULT_ORG_FN = ("CREATE OR REPLACE FUNCTION public.default_organization_id() RETURNS uuid\n"
                  "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$")

PREFLIGHT = [
    Broken("missing table", "preflight",
           ((SCHEMA, *_before_commit("UPDATE public.audit_report_archive SET title = title WHERE false;")),),
           (("bundle.references", "public.audit_report_archive"),)),
    Broken("misspelt relation", "preflight",
           ((SCHEMA, *_before_commit("COMMENT ON COLUMN public.audit_reports.title IS 'x';\n"
                                     "ANALYZE public.audit_reprots;")),),
           (("bundle.references", "public.audit_reprots"),)),
    Broken("unguarded CREATE POLICY", "preflight",
           ((POLICIES, "DROP POLICY IF EXISTS mt_audit_reports_select ON public.audit_reports;\n", ""),),
           (("bundle.rerunnable", "CREATE POLICY mt_audit_reports_select ON public.audit_reports"),)),
    Broken("TEMP migration_progress", "preflight",
           ((SCHEMA, "CREATE TABLE IF NOT EXISTS public.migration_progress", "CREATE TEMP TABLE migration_progress"),),
           (("bundle.temp_tables", "TEMP table migration_progress"),)),
    Broken("non-concurrent CREATE INDEX", "preflight",
           ((SCHEMA, *_before_commit("CREATE INDEX audit_reports_title_idx ON public.audit_reports (title);")),),
           (("locks.blocking", "require-concurrent-index-creation"), ("locks.blocking", "public.audit_reports"))),
    Broken("FK validated at once", "preflight",
           ((SCHEMA, *_before_commit(
               "ALTER TABLE public.automation_jobs ADD CONSTRAINT automation_jobs_report_fk2 "
               "FOREIGN KEY (audit_report_id) REFERENCES public.audit_reports (id);")),),
           (("locks.blocking", "adding-foreign-key-constraint"), ("locks.blocking", "public.automation_jobs"))),
    Broken("ADD COLUMN DEFAULT clock_timestamp()", "preflight",
           ((SCHEMA, *_before_commit(
               "ALTER TABLE public.audit_reports ADD COLUMN IF NOT EXISTS migrated_at timestamptz "
               "DEFAULT clock_timestamp();")),),
           (("locks.blocking", "adding-field-with-default"), ("locks.blocking", "rewrites"))),
    Broken("non-concurrent CREATE INDEX inside a DO block", "preflight",
           ((SCHEMA, *_before_commit(
               "DO $$ BEGIN EXECUTE 'CREATE INDEX IF NOT EXISTS jobs_status_idx ON public.automation_jobs (status)'; "
               "END $$;")),),
           (("locks.blocking", "require-concurrent-index-creation"), ("locks.blocking", "DO block"))),
]
STATIC = [
    Broken("USING (true)", "static",
           ((POLICIES, AUDIT_SELECT, AUDIT_SELECT.replace(
               "USING (organization_id = ANY (ARRAY(SELECT public.user_organization_ids())))", "USING (true)")),),
           (("policy_using_true", "policy mt_audit_reports_select on public.audit_reports"),)),
    Broken("organization_id IS NULL OR", "static",
           ((POLICIES, JOBS_SELECT, JOBS_SELECT.replace("USING (organization_id = ANY",
                                                        "USING (organization_id IS NULL OR organization_id = ANY")),),
           (("null_disjunct", "policy mt_automation_jobs_select on public.automation_jobs"),)),
    Broken("recursive membership policy", "static",
           ((POLICIES, MEMBERS_SELECT,
             "USING (user_id = (SELECT auth.uid()) OR organization_id IN (SELECT m.organization_id FROM "
             "public.organization_memberships m WHERE m.user_id = (SELECT auth.uid())));"),),
           (("policy_recursion", "policy mt_organization_memberships_select on public.organization_memberships"),)),
    Broken("bare id binding to the wrong table", "static",
           ((POLICIES, ORGS_UPDATE, ORGS_UPDATE.replace(
               "USING (id = ANY (ARRAY(SELECT public.user_admin_organization_ids())))",
               "USING (EXISTS (SELECT 1 FROM public.organization_memberships m WHERE m.organization_id = id "
               "AND m.user_id = (SELECT auth.uid()) AND m.role = 'admin'))")),),
           (("inner_binding", "policy mt_organizations_update on public.organizations: id"),)),
    Broken("SECURITY DEFINER without search_path executable by anon", "static",
           ((SCHEMA, DEFAULT_ORG_FN, DEFAULT_ORG_FN.replace(" SET search_path = ''", "")),),
           (("definer_executable_by_api", "function public.default_organization_id()"),)),
    Broken("self-escalating membership INSERT policy", "static",
           ((POLICIES, MEMBERS_INSERT,
             "FOR INSERT TO authenticated\n    WITH CHECK (user_id = (SELECT auth.uid()));"),),
           (("membership_self_escalation",
             "policy mt_organization_memberships_insert on public.organization_memberships"),)),
    Broken("UPDATE without WITH CHECK", "static",
           ((POLICIES, REPORTS_UPDATE_CHECK, REPORTS_UPDATE_CHECK.replace(
f"\n    WITH CHECK ({WRITABLE});", ";")),),
           (("policy_without_with_check", "policy mt_audit_reports_update on public.audit_reports"),)),
]

AMBIGUOUS_FUNCTION = """
CREATE OR REPLACE FUNCTION public.mt_reports_of(organization_id uuid) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = '' AS $fn$
BEGIN
    RETURN (SELECT count(*) FROM public.audit_reports r WHERE r.user_id IS NOT NULL
            AND organization_id = organization_id);
END
$fn$;"""

PLPGSQL = [
    Broken("function with an ambiguous column reference", "plpgsql_check",
           ((SCHEMA, *_before_commit(AMBIGUOUS_FUNCTION)),),
           (("plpgsql_check_error", "function public.mt_reports_of(uuid)"),)),
]

# Several defects at once: every one must be reported, at its own stage.
SEVERAL = Broken(
    "several defects at once", "several",
    PREFLIGHT[0].edits + PREFLIGHT[2].edits + PREFLIGHT[4].edits + STATIC[0].edits + STATIC[1].edits
    + STATIC[5].edits,
    PREFLIGHT[0].expect + PREFLIGHT[2].expect + PREFLIGHT[4].expect + STATIC[0].expect + STATIC[1].expect
    + STATIC[5].expect,
)


def apply(bundle: Path, broken: Broken) -> Path:
    for name, old, new in broken.edits:
        path = bundle / name
        text = path.read_text()
        assert old in text, f"{broken.name}: {old[:60]!r} not in {name}: the bundle changed, update the library"
        path.write_text(text.replace(old, new, 1))
    return bundle
