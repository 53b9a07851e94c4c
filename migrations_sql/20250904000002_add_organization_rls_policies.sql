-- 20250904000002_add_organization_rls_policies.sql
-- What: replaces the single-tenant (owner-based) policies on the tenant tables with organization-based
--   policies, after saving the exact definition of every policy it removes (whatever its name), the RLS
--   flags and the options of the views over tenant tables in public.multi_tenant_saved_objects, so that
--   rollback-multi-tenant-organizations.sql can restore them. Adds the policies of organizations and
--   organization_memberships, and makes views over tenant tables security_invoker (no RLS bypass).
--   Access is preserved command by command: a tenant table gets an organization policy for SELECT,
--   INSERT, UPDATE or DELETE only where a saved pre-migration policy allowed that command to authenticated
--   (or PUBLIC). With every user in their own personal organization (0001/0003), each user then reads and
--   writes exactly the rows they could before: their own.
--   Policies evaluate the tenant set once per statement:
--     organization_id = ANY (ARRAY(SELECT public.user_organization_ids()))
--   over SECURITY DEFINER helpers with an empty search_path (no recursion through memberships' RLS).
--   Roles: anon gets no tenant policy (sees nothing; it may still join the waitlist if it could before, into
--   the member-less unassigned organization); service_role has BYPASSRLS and explicit FOR ALL policies;
--   guests read, members and admins write, admins manage memberships; nobody adds themselves to an
--   organization or raises their own role.
-- Access window: from this file until ...000003 has backfilled a row, authenticated users do not see that
--   row: its organization_id is still NULL and NULL matches no organization. Widening the policies with
--   "OR organization_id IS NULL AND user_id = auth.uid()" would close it, but PostgreSQL 15 keeps that OR
--   after the column becomes NOT NULL, which stops every policy from using the organization indexes. So
--   run ...000003 right after this file (or both in the maintenance window); service_role (Workers) is not
--   affected (BYPASSRLS). The window never shows a user a row that is not theirs.
-- Privileges: ownership of the tenant tables (policies, RLS flags) and of the views whose options change;
--   nothing outside schema public is touched.
-- Locks: one short transaction; CREATE/DROP POLICY, ENABLE RLS and ALTER VIEW take brief ACCESS EXCLUSIVE
--   locks on the tenant tables (catalog only), taken up front with short retried attempts.
-- Idempotent: the save is ON CONFLICT DO NOTHING and skips this file's own policies (prefix mt_); every
--   policy is dropped IF EXISTS before being created, in the same transaction, and the per-command choice
--   reads the saved definitions, so a re-run makes the same choice.

SET lock_timeout = '3s';
-- Catalog-only statements on the tenant tables (no scans, no rewrites): must be quick.
SET statement_timeout = '60s';
SET client_min_messages = warning;  -- hide the "does not exist, skipping" notices of IF EXISTS

BEGIN;

-- Take every lock this transaction needs up front, in one fixed order, with short attempts: a writer can
-- then never hold one table while this file waits for another (a deadlock), and writers queue behind this
-- file for at most one 500 ms attempt. Repeated in 0001, 0002 and the rollback: each file runs alone in psql.
DO $$
DECLARE
    tables text := (SELECT string_agg(format('public.%I', t), ', ' ORDER BY ord)
                    FROM unnest(ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations',
                                      'waitlist', 'organizations', 'organization_memberships'])
                         WITH ORDINALITY AS u(t, ord)
                    WHERE to_regclass(format('public.%I', t)) IS NOT NULL);
    attempt integer := 0;
BEGIN
    LOOP
        attempt := attempt + 1;
        BEGIN
            PERFORM set_config('lock_timeout', '500ms', true);
            EXECUTE 'LOCK TABLE auth.users IN ACCESS SHARE MODE';
            EXECUTE 'LOCK TABLE ' || tables || ' IN ACCESS EXCLUSIVE MODE';
            EXIT;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            IF attempt >= 30 THEN
                RAISE;
            END IF;
            RAISE NOTICE 'tenant tables busy (attempt % of 30), retrying', attempt;
            PERFORM pg_catalog.pg_sleep(least(0.2 * attempt, 2));
        END;
    END LOOP;
END
$$;

CREATE TABLE IF NOT EXISTS public.multi_tenant_saved_objects (
    kind text NOT NULL,
    table_name text NOT NULL,
    object_name text NOT NULL,
    restore_sql text NOT NULL,
    original jsonb,
    saved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, table_name, object_name)
);
REVOKE ALL ON public.multi_tenant_saved_objects FROM PUBLIC, anon, authenticated, service_role;

-- Save the policies this file replaces, exactly as the catalog has them (names are not known in advance).
INSERT INTO public.multi_tenant_saved_objects (kind, table_name, object_name, restore_sql, original)
SELECT 'policy', p.tablename, p.policyname,
       format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s',
              p.policyname, p.schemaname, p.tablename, p.permissive, p.cmd,
              (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ' ORDER BY o)
               FROM unnest(p.roles) WITH ORDINALITY AS x (r, o)),
              CASE WHEN p.qual IS NOT NULL THEN format(' USING (%s)', p.qual) ELSE '' END,
              CASE WHEN p.with_check IS NOT NULL THEN format(' WITH CHECK (%s)', p.with_check) ELSE '' END),
       to_jsonb(p)
FROM pg_catalog.pg_policies p
WHERE p.schemaname = 'public'
  AND p.tablename IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist')
  AND p.policyname NOT LIKE 'mt\_%'
ON CONFLICT DO NOTHING;

-- Save the RLS flags of the tenant tables.
INSERT INTO public.multi_tenant_saved_objects (kind, table_name, object_name, restore_sql, original)
SELECT 'rls', c.relname, c.relname,
       format('ALTER TABLE public.%I %s ROW LEVEL SECURITY', c.relname,
              CASE WHEN c.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END),
       jsonb_build_object('relrowsecurity', c.relrowsecurity, 'relforcerowsecurity', c.relforcerowsecurity)
FROM pg_catalog.pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relname IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist')
ON CONFLICT DO NOTHING;

-- Save the options of every pre-existing view (in any non-system schema) that reads a tenant table.
INSERT INTO public.multi_tenant_saved_objects (kind, table_name, object_name, restore_sql, original)
SELECT DISTINCT 'view_options', v.oid::regclass::text, v.oid::regclass::text,
       CASE WHEN opt.value IS NULL THEN format('ALTER VIEW %s RESET (security_invoker)', v.oid::regclass)
            ELSE format('ALTER VIEW %s SET (security_invoker = %s)', v.oid::regclass, opt.value) END,
       jsonb_build_object('reloptions', v.reloptions)
FROM pg_catalog.pg_class v
JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = v.oid
JOIN pg_catalog.pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                           AND d.refclassid = 'pg_class'::regclass
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
LEFT JOIN LATERAL (SELECT split_part(o, '=', 2) AS value FROM unnest(v.reloptions) o
                   WHERE o LIKE 'security\_invoker=%') opt ON true
WHERE v.relkind = 'v' AND t.relnamespace = 'public'::regnamespace
  AND v.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  AND t.relname IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist')
  AND v.oid <> 'public.organization_stats'::regclass
ON CONFLICT DO NOTHING;

-- Drop the saved (single-tenant) policies.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.policyname, p.tablename FROM pg_catalog.pg_policies p
             WHERE p.schemaname = 'public'
               AND p.tablename IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations',
                                   'waitlist')
               AND p.policyname NOT LIKE 'mt\_%'
    LOOP
        EXECUTE format('DROP POLICY %I ON public.%I', r.policyname, r.tablename);
    END LOOP;
END
$$;

-- Views over tenant tables must not bypass RLS.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT s.object_name FROM public.multi_tenant_saved_objects s WHERE s.kind = 'view_options' LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', r.object_name);
    END LOOP;
END
$$;

ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.automation_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.generated_automations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organization_memberships ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------------------
-- Tenant tables. A command gets an organization policy for authenticated only where a saved (pre-migration)
-- permissive policy allowed that command to authenticated (or PUBLIC): what nobody could do before (e.g.
-- delete a job, write a generated automation on ProcessAudit) stays impossible, so no user gains a power.
-- Reads: the rows of my active organizations (with personal organizations: my own rows). Writes: the rows
-- of the organizations I am admin or member of; new rows are my own; nothing moves to an organization I
-- cannot write in (a new user's personal organization counts as theirs before it exists, see 0001).
-- ---------------------------------------------------------------------------------------------------
DO $$
DECLARE
    r record;
    v_allowed boolean;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('profiles', 'select',
             'organization_id = ANY (ARRAY(SELECT public.user_organization_ids())) OR id = (SELECT auth.uid())', NULL),
            ('profiles', 'insert', NULL,
             'id = (SELECT auth.uid()) AND organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))'),
            ('profiles', 'update',
             'id = (SELECT auth.uid()) AND organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))',
             'id = (SELECT auth.uid()) AND organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))'),
            ('profiles', 'delete',
             'id = (SELECT auth.uid()) AND organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))',
             NULL),
            ('audit_reports', 'select', 'organization_id = ANY (ARRAY(SELECT public.user_organization_ids()))', NULL),
            ('audit_reports', 'insert', NULL,
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids())) '
             'AND user_id = (SELECT auth.uid())'),
            ('audit_reports', 'update', 'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))',
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))'),
            ('audit_reports', 'delete', 'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))',
             NULL),
            ('automation_jobs', 'select', 'organization_id = ANY (ARRAY(SELECT public.user_organization_ids()))', NULL),
            ('automation_jobs', 'insert', NULL,
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids())) '
             'AND user_id = (SELECT auth.uid())'),
            ('automation_jobs', 'update', 'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))',
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))'),
            ('automation_jobs', 'delete', 'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))',
             NULL),
            -- A new or changed generated automation must point at a job of the same organization.
            ('generated_automations', 'select',
             'organization_id = ANY (ARRAY(SELECT public.user_organization_ids()))', NULL),
            ('generated_automations', 'insert', NULL,
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids())) '
             'AND EXISTS (SELECT 1 FROM public.automation_jobs j '
             'WHERE j.id = job_id AND j.organization_id = generated_automations.organization_id)'),
            ('generated_automations', 'update',
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))',
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids())) '
             'AND EXISTS (SELECT 1 FROM public.automation_jobs j '
             'WHERE j.id = job_id AND j.organization_id = generated_automations.organization_id)'),
            ('generated_automations', 'delete',
             'organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))', NULL),
            -- waitlist (optional): a user sees their own entry (admins of a shared organization its entries);
            -- entries without a user belong to the unassigned organization and are seen by nobody.
            ('waitlist', 'select',
             'organization_id = ANY (ARRAY(SELECT public.user_organization_ids())) '
             'AND (user_id = (SELECT auth.uid()) '
             'OR organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids())))', NULL),
            ('waitlist', 'insert', NULL,
             '(user_id = (SELECT auth.uid()) '
             'AND organization_id = ANY (ARRAY(SELECT public.user_writable_organization_ids()))) '
             'OR (user_id IS NULL AND organization_id = (SELECT public.unassigned_organization_id()))'),
            ('waitlist', 'update', 'organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids()))',
             'organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids()))'),
            ('waitlist', 'delete', 'organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids()))', NULL)
        ) AS p (table_name, command, using_expr, check_expr)
    LOOP
        CONTINUE WHEN to_regclass(format('public.%I', r.table_name)) IS NULL;
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', format('mt_%s_%s', r.table_name, r.command),
                       r.table_name);
        v_allowed := EXISTS (
            SELECT 1 FROM public.multi_tenant_saved_objects s
            WHERE s.kind = 'policy' AND s.table_name = r.table_name
              AND s.original ->> 'permissive' = 'PERMISSIVE'
              AND s.original ->> 'cmd' IN (upper(r.command), 'ALL')
              AND (s.original -> 'roles') ?| ARRAY['authenticated', 'public']);
        CONTINUE WHEN NOT v_allowed;
        EXECUTE format('CREATE POLICY %I ON public.%I FOR %s TO authenticated%s%s',
                       format('mt_%s_%s', r.table_name, r.command), r.table_name, upper(r.command),
                       CASE WHEN r.using_expr IS NOT NULL THEN format(' USING (%s)', r.using_expr) ELSE '' END,
                       CASE WHEN r.check_expr IS NOT NULL THEN format(' WITH CHECK (%s)', r.check_expr) ELSE '' END);
    END LOOP;
END
$$;

-- service_role (Workers) keeps full access; it also has BYPASSRLS on Supabase.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist']
    LOOP
        CONTINUE WHEN to_regclass(format('public.%I', t)) IS NULL;
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', 'mt_' || t || '_service_role', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR ALL TO service_role USING (true) WITH CHECK (true)',
                       'mt_' || t || '_service_role', t);
    END LOOP;
END
$$;

-- Anonymous sign-ups to the waitlist (where anon could insert before) land in the unassigned organization.
DO $$
BEGIN
    IF to_regclass('public.waitlist') IS NULL THEN
        RETURN;
    END IF;
    DROP POLICY IF EXISTS mt_waitlist_anon_insert ON public.waitlist;
    IF EXISTS (SELECT 1 FROM public.multi_tenant_saved_objects s
               WHERE s.kind = 'policy' AND s.table_name = 'waitlist' AND s.original ->> 'permissive' = 'PERMISSIVE'
                 AND s.original ->> 'cmd' IN ('INSERT', 'ALL') AND (s.original -> 'roles') ?| ARRAY['anon', 'public'])
    THEN
        CREATE POLICY mt_waitlist_anon_insert ON public.waitlist FOR INSERT TO anon
            WITH CHECK (user_id IS NULL AND organization_id = (SELECT public.unassigned_organization_id()));
    END IF;
END
$$;

-- ---------------------------------------------------------------------------------------------------
-- organizations: members see theirs; admins update them (the granted columns); a personal organization
-- cannot be deleted.
-- New organizations are created through public.create_organization() (creator becomes admin).
-- ---------------------------------------------------------------------------------------------------
DROP POLICY IF EXISTS mt_organizations_select ON public.organizations;
CREATE POLICY mt_organizations_select ON public.organizations FOR SELECT TO authenticated
    USING (id = ANY (ARRAY(SELECT public.user_organization_ids())));
DROP POLICY IF EXISTS mt_organizations_update ON public.organizations;
CREATE POLICY mt_organizations_update ON public.organizations FOR UPDATE TO authenticated
    USING (id = ANY (ARRAY(SELECT public.user_admin_organization_ids())))
    WITH CHECK (id = ANY (ARRAY(SELECT public.user_admin_organization_ids())));
DROP POLICY IF EXISTS mt_organizations_delete ON public.organizations;
CREATE POLICY mt_organizations_delete ON public.organizations FOR DELETE TO authenticated
    USING (id = ANY (ARRAY(SELECT public.user_admin_organization_ids())) AND NOT is_default);
DROP POLICY IF EXISTS mt_organizations_service_role ON public.organizations;
CREATE POLICY mt_organizations_service_role ON public.organizations FOR ALL TO service_role
    USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------------------------------
-- organization_memberships: a user sees their own memberships and those of their organizations; only
-- admins add, change or remove memberships of their organization (so nobody can add themselves to an
-- organization or raise their own role); a user may leave an organization, except their personal one (its id
-- is theirs). The helpers are SECURITY
-- DEFINER, so these policies never query organization_memberships under RLS (no recursion).
-- ---------------------------------------------------------------------------------------------------
DROP POLICY IF EXISTS mt_organization_memberships_select ON public.organization_memberships;
CREATE POLICY mt_organization_memberships_select ON public.organization_memberships FOR SELECT TO authenticated
    USING (user_id = (SELECT auth.uid())
           OR organization_id = ANY (ARRAY(SELECT public.user_organization_ids())));
DROP POLICY IF EXISTS mt_organization_memberships_insert ON public.organization_memberships;
CREATE POLICY mt_organization_memberships_insert ON public.organization_memberships FOR INSERT TO authenticated
    WITH CHECK (organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids())));
DROP POLICY IF EXISTS mt_organization_memberships_update ON public.organization_memberships;
CREATE POLICY mt_organization_memberships_update ON public.organization_memberships FOR UPDATE TO authenticated
    USING (organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids())))
    WITH CHECK (organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids())));
DROP POLICY IF EXISTS mt_organization_memberships_delete ON public.organization_memberships;
CREATE POLICY mt_organization_memberships_delete ON public.organization_memberships FOR DELETE TO authenticated
    USING (organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids()))
           OR (user_id = (SELECT auth.uid()) AND organization_id <> (SELECT auth.uid())));
DROP POLICY IF EXISTS mt_organization_memberships_service_role ON public.organization_memberships;
CREATE POLICY mt_organization_memberships_service_role ON public.organization_memberships FOR ALL
    TO service_role USING (true) WITH CHECK (true);

COMMIT;

RESET lock_timeout;
RESET statement_timeout;
RESET client_min_messages;
