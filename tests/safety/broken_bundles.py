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


# Defects are appended before the file's final COMMIT (anchored on the file's closing lines, not on the text of
# one policy), so the library follows a rewritten bundle: each adds one permissive policy or function.
def _policy(name, table, rest):
    return (POLICIES, *_before_commit(f"DROP POLICY IF EXISTS {name} ON public.{table};\n"
                                      f"CREATE POLICY {name} ON public.{table} {rest};"))


UID = "(SELECT auth.uid())"
PREFLIGHT = [
    Broken("missing table", "preflight",
           ((SCHEMA, *_before_commit("UPDATE public.audit_report_archive SET title = title WHERE false;")),),
           (("bundle.references", "public.audit_report_archive"),)),
    Broken("misspelt relation", "preflight",
           ((SCHEMA, *_before_commit("COMMENT ON COLUMN public.audit_reports.title IS 'x';\n"
                                     "ANALYZE public.audit_reprots;")),),
           (("bundle.references", "public.audit_reprots"),)),
    Broken("unguarded CREATE POLICY", "preflight",
           ((POLICIES, *_before_commit("CREATE POLICY mt_broken_unguarded ON public.audit_reports FOR SELECT "
                                       f"TO authenticated USING (user_id = {UID});")),),
           (("bundle.rerunnable", "CREATE POLICY mt_broken_unguarded ON public.audit_reports"),)),
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
           (_policy("mt_broken_open", "audit_reports", "FOR SELECT TO authenticated USING (true)"),),
           (("policy_using_true", "policy mt_broken_open on public.audit_reports"),)),
    Broken("organization_id IS NULL OR", "static",
           (_policy("mt_broken_null", "automation_jobs",
                    f"FOR SELECT TO authenticated USING (organization_id IS NULL OR user_id = {UID})"),),
           (("null_disjunct", "policy mt_broken_null on public.automation_jobs"),)),
    Broken("recursive membership policy", "static",
           (_policy("mt_broken_recursive", "organization_memberships",
                    "FOR SELECT TO authenticated USING (organization_id IN (SELECT m.organization_id FROM "
                    f"public.organization_memberships m WHERE m.user_id = {UID}))"),),
           (("policy_recursion", "policy mt_broken_recursive on public.organization_memberships"),)),
    Broken("bare id binding to the wrong table", "static",
           (_policy("mt_broken_binding", "organizations",
                    "FOR UPDATE TO authenticated USING (EXISTS (SELECT 1 FROM public.organization_memberships m "
                    f"WHERE m.organization_id = id AND m.user_id = {UID} AND m.role = 'admin')) WITH CHECK (true)"),),
           (("inner_binding", "policy mt_broken_binding on public.organizations: id"),)),
    Broken("SECURITY DEFINER without search_path executable by anon", "static",
           ((SCHEMA, *_before_commit(
               "CREATE OR REPLACE FUNCTION public.mt_broken_member_ids(p_user uuid) RETURNS SETOF uuid\n"
               "LANGUAGE sql STABLE SECURITY DEFINER AS $$\n"
               "    SELECT organization_id FROM public.organization_memberships WHERE user_id = p_user\n$$;\n"
               "GRANT EXECUTE ON FUNCTION public.mt_broken_member_ids(uuid) TO anon, authenticated;")),),
           (("definer_executable_by_api", "function public.mt_broken_member_ids(p_user uuid)"),)),
    Broken("self-escalating membership INSERT policy", "static",
           (_policy("mt_broken_join", "organization_memberships",
                    f"FOR INSERT TO authenticated WITH CHECK (user_id = {UID})"),),
           (("membership_self_escalation", "policy mt_broken_join on public.organization_memberships"),)),
    Broken("UPDATE without WITH CHECK", "static",
           (_policy("mt_broken_move", "audit_reports", f"FOR UPDATE TO authenticated USING (user_id = {UID})"),),
           (("policy_without_with_check", "policy mt_broken_move on public.audit_reports"),)),
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
