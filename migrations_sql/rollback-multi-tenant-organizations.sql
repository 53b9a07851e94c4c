-- rollback-multi-tenant-organizations.sql
-- What: removes every object added by 20250904000001..3 and restores the pre-migration schema exactly:
--   the organization policies are dropped and the original policies re-created from the definitions
--   0002 saved (public.multi_tenant_saved_objects), with the original RLS flags and view options; the
--   triggers (all on public tenant tables), functions, procedures, view, organization_id columns (with their
--   foreign keys, checks and indexes), organization_memberships and organizations (personal ones included)
--   are dropped. All original rows stay intact, with every original column value.
--   WARNING: organization data (organizations, memberships, row assignments) is lost.
-- Privileges: only what the migration role owns (the public tables and everything the bundle created); no
--   ownership of auth.users is needed (the bundle creates no trigger there; dropping the tables that
--   reference auth.users only needs a lock on it).
--   public.migration_progress is kept as history; its rows are marked rolled_back so that a later
--   forward run of ...000003 starts the backfill afresh.
-- Locks: one short transaction; DROP COLUMN / DROP POLICY / DROP TRIGGER take brief ACCESS EXCLUSIVE locks
--   (catalog only: DROP COLUMN does not rewrite the table), and dropping the foreign keys to auth.users
--   briefly locks it; all taken up front with short retried attempts. lock_timeout makes it fail fast.
-- Idempotent: everything is IF EXISTS or guarded by catalog checks; re-running after success is a no-op.

-- squawk-ignore-file ban-drop-function, ban-drop-column, ban-drop-table, ban-drop-view
-- Justification: dropping exactly the functions, columns, tables and view that 20250904000001..3 added is
-- the purpose of this rollback; no pre-migration object is dropped (the fingerprint test proves it).

SET lock_timeout = '3s';
-- Catalog-only statements: anything slower than this means something is wrong; fail and retry later.
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
            EXECUTE 'LOCK TABLE auth.users IN ACCESS EXCLUSIVE MODE';
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

-- 1. Organization policies (prefix mt_) on the tenant tables.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.policyname, p.tablename FROM pg_catalog.pg_policies p
             WHERE p.schemaname = 'public'
               AND p.tablename IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations',
                                   'waitlist')
               AND p.policyname LIKE 'mt\_%'
    LOOP
        EXECUTE format('DROP POLICY %I ON public.%I', r.policyname, r.tablename);
    END LOOP;
END
$$;

-- 2. The saved policies, RLS flags and view options, exactly as they were.
DO $$
DECLARE
    r record;
BEGIN
    IF to_regclass('public.multi_tenant_saved_objects') IS NULL THEN
        RETURN;
    END IF;
    FOR r IN EXECUTE 'SELECT kind, table_name, object_name, restore_sql FROM public.multi_tenant_saved_objects
                      ORDER BY kind, table_name, object_name'
    LOOP
        CONTINUE WHEN r.kind IN ('policy', 'rls') AND to_regclass(format('public.%I', r.table_name)) IS NULL;
        CONTINUE WHEN r.kind = 'view_options' AND to_regclass(r.object_name) IS NULL;
        CONTINUE WHEN r.kind = 'policy' AND EXISTS (
            SELECT 1 FROM pg_catalog.pg_policies p
            WHERE p.schemaname = 'public' AND p.tablename = r.table_name AND p.policyname = r.object_name);
        EXECUTE r.restore_sql;
    END LOOP;
END
$$;

-- 3. Triggers (all on tables the migration role owns: nothing on auth.users). An earlier version of the
--    bundle had one on auth.users: removed only where it exists.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist']
    LOOP
        CONTINUE WHEN to_regclass(format('public.%I', t)) IS NULL;
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON public.%I', 'set_' || t || '_organization_id', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON public.%I', 'zz_mt_' || t || '_backfill_keeps_row', t);
    END LOOP;
    DROP TRIGGER IF EXISTS mt_profiles_personal_organization ON public.profiles;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = 'auth.users'::regclass
                 AND tgname = 'on_auth_user_created_add_membership') THEN
        DROP TRIGGER IF EXISTS on_auth_user_created_add_membership ON auth.users;
    END IF;
END
$$;

-- 4. View, procedures and functions.
DROP VIEW IF EXISTS public.organization_stats;
DROP PROCEDURE IF EXISTS public.mt_prepare_data_migration();
DROP PROCEDURE IF EXISTS public.mt_backfill_organization_ids(numeric);
DROP PROCEDURE IF EXISTS public.mt_finalize_organization_columns();
DROP FUNCTION IF EXISTS public.mt_backfill_expression(text);
DROP FUNCTION IF EXISTS public.mt_exec_with_lock_retry(text, integer);
DROP FUNCTION IF EXISTS public.create_organization(text, text);
DROP FUNCTION IF EXISTS public.get_organization_usage_stats(uuid);
DROP FUNCTION IF EXISTS public.get_organization_automation_jobs(uuid, text, integer, integer);
DROP FUNCTION IF EXISTS public.create_organization_automation_job(uuid, uuid, text, uuid, jsonb);
DROP FUNCTION IF EXISTS public.validate_organization_access(uuid, uuid, text);
DROP FUNCTION IF EXISTS public.get_user_organizations(uuid);
DROP FUNCTION IF EXISTS public.handle_new_user_organization();
DROP FUNCTION IF EXISTS public.handle_new_profile_organization();
DROP FUNCTION IF EXISTS public.mt_backfill_keeps_row();
DROP FUNCTION IF EXISTS public.set_organization_id_from_user();
DROP FUNCTION IF EXISTS public.ensure_personal_organization(uuid);
DROP FUNCTION IF EXISTS public.is_organization_admin(uuid, uuid);
DROP FUNCTION IF EXISTS public.is_organization_member(uuid, uuid);

-- 5. organization_id columns (their foreign keys, NOT NULL checks and indexes go with them).
ALTER TABLE public.profiles DROP COLUMN IF EXISTS organization_id;
ALTER TABLE public.audit_reports DROP COLUMN IF EXISTS organization_id;
ALTER TABLE public.automation_jobs DROP COLUMN IF EXISTS organization_id;
ALTER TABLE public.generated_automations DROP COLUMN IF EXISTS organization_id;
DO $$
BEGIN
    IF to_regclass('public.waitlist') IS NOT NULL THEN
        ALTER TABLE public.waitlist DROP COLUMN IF EXISTS organization_id;
    END IF;
END
$$;

-- 6. The new tables (with their policies), then the helpers those policies used.
DROP TABLE IF EXISTS public.organization_memberships;
DROP TABLE IF EXISTS public.organizations;
DROP FUNCTION IF EXISTS public.user_admin_organization_ids();
DROP FUNCTION IF EXISTS public.user_writable_organization_ids();
DROP FUNCTION IF EXISTS public.user_organization_ids();
DROP FUNCTION IF EXISTS public.default_organization_id(uuid);
DROP FUNCTION IF EXISTS public.default_organization_id();
DROP FUNCTION IF EXISTS public.unassigned_organization_id();
DROP TABLE IF EXISTS public.multi_tenant_saved_objects;

-- 7. Progress history: keep it, but make the next forward run start afresh.
DO $$
BEGIN
    IF to_regclass('public.migration_progress') IS NOT NULL THEN
        UPDATE public.migration_progress
        SET status = 'rolled_back', updated_at = now(),
            detail = 'rolled back at ' || now()::text || coalesce(' (was ' || status || ')', '')
        WHERE status <> 'rolled_back';
    END IF;
END
$$;

COMMIT;

RESET lock_timeout;
RESET statement_timeout;
RESET client_min_messages;
