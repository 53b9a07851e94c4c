-- 20250904000001_add_multi_tenant_organizations.sql
-- What: organizations, organization_memberships, a nullable organization_id on every tenant table
--   (profiles, audit_reports, automation_jobs, generated_automations, and waitlist when present), the
--   triggers that give rows written by single-tenant code an organization, membership helpers (SECURITY
--   DEFINER, empty search_path), the Workers functions, the organization_stats view (security_invoker),
--   explicit grants, the "Unassigned legacy rows" organization and the migration_progress table. No data is
--   backfilled here and no personal organization is created for existing users (see ...000003).
-- Idempotent: every statement is IF NOT EXISTS / OR REPLACE / ON CONFLICT / guarded by a catalog check, so
--   the file can be re-run after a failure or after success; being one transaction, a failed run leaves
--   nothing.
-- Locks: one short transaction. ADD COLUMN without default (catalog only, no rewrite) and CREATE TRIGGER
--   take brief ACCESS EXCLUSIVE / SHARE ROW EXCLUSIVE locks on the tenant tables, all taken up front with
--   short retried attempts. The foreign keys of organization_id are added by ...000003 after the backfill
--   (NOT VALID, then validated), so that the backfill does not pay a foreign-key check per row.
--   No index is built on a large table here (they are built CONCURRENTLY in ...000003).
-- Design: access is preserved by giving EVERY USER A PERSONAL ORGANIZATION (organizations.is_default = true)
--   whose id IS THE USER'S OWN ID, with the user as its only active admin. "The default organization" is
--   therefore per user, never a shared row; sharing is an explicit act after the migration (inviting
--   people into an organization). Why the id: the owner link is unique by construction, lazy creation is a
--   plain ON CONFLICT (id) DO NOTHING, and the backfill maps a row to its organization with no lookup at
--   all (organization_id = user_id). Rows no user could read before (user_id NULL) go to the member-less
--   organization with slug 'unassigned-legacy-rows', so they stay unreadable by every user.
--   New sign-ups through the old code path get their personal organization WITHOUT any trigger on
--   auth.users (on Supabase it belongs to supabase_auth_admin: the migration role could create such a
--   trigger but not drop it, and the rollback would fail): an AFTER INSERT trigger on public.profiles
--   (Supabase installations create profiles on sign-up) and the BEFORE INSERT/UPDATE trigger on every
--   tenant table create the writer's personal organization lazily when it does not exist yet.
--   Functions only use the contract's columns (DESIGN.md); optional columns of automation_jobs are used by
--   create_organization_automation_job only when the installation has them, and listings return the job
--   row as jsonb. A trigger named zz_mt_<table>_backfill_keeps_row (last BEFORE UPDATE trigger by name)
--   restores every other column of a row the backfill touches, so that handle_updated_at() and any other
--   row trigger of the installation leave pre-existing columns (updated_at included) exactly as they were,
--   without superuser (session_replication_role) and without DDL per batch.
-- Privileges: everything here is owned by the role running it and can be dropped by it: ownership of the
--   public tenant tables (ALTER TABLE, CREATE TRIGGER on them), CREATE on schema public, REFERENCES on
--   auth.users (memberships and organizations reference it). Nothing is created on auth.users.

-- squawk-ignore-file ban-drop-function
-- Justification: the only functions dropped are this bundle's own from an earlier version (the argument-less
-- default_organization_id, the auth.users trigger function, a listing whose result type changed).

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
            -- New foreign keys to auth.users (memberships, organizations.created_by) need this mode.
            EXECUTE 'LOCK TABLE auth.users IN SHARE ROW EXCLUSIVE MODE';
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

-- ---------------------------------------------------------------------------------------------------
-- New tables
-- ---------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL,
    name text NOT NULL,
    plan text NOT NULL DEFAULT 'free',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- true for a user's personal organization (their default): its id is the user's id.
    is_default boolean NOT NULL DEFAULT false,
    created_by uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organizations_slug_key UNIQUE (slug),
    CONSTRAINT organizations_slug_format CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    CONSTRAINT organizations_name_not_blank CHECK (length(btrim(name)) > 0),
    CONSTRAINT organizations_plan_check CHECK (plan IN ('free', 'pro', 'enterprise')),
    CONSTRAINT organizations_personal_is_owners CHECK (NOT is_default OR created_by IS NULL OR created_by = id)
);

CREATE TABLE IF NOT EXISTS public.organization_memberships (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'member',
    status text NOT NULL DEFAULT 'active',
    invited_by uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    invited_at timestamptz,
    accepted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_memberships_organization_id_user_id_key UNIQUE (organization_id, user_id),
    CONSTRAINT organization_memberships_role_check CHECK (role IN ('admin', 'member', 'guest')),
    CONSTRAINT organization_memberships_status_check
        CHECK (status IN ('active', 'inactive', 'invited', 'suspended'))
);
-- The RLS helpers look up "my active memberships": user first, covering organization and role.
CREATE INDEX IF NOT EXISTS idx_organization_memberships_user_active
    ON public.organization_memberships (user_id, organization_id) INCLUDE (role) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS idx_organization_memberships_user_id
    ON public.organization_memberships (user_id);

-- Progress of the data migration (...000003); psql users and the panel both read it.
CREATE TABLE IF NOT EXISTS public.migration_progress (
    table_name text PRIMARY KEY,
    rows_total bigint,
    rows_done bigint NOT NULL DEFAULT 0,
    last_key text,
    status text NOT NULL DEFAULT 'pending',
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    pages_total bigint,
    batches bigint NOT NULL DEFAULT 0,
    detail text,
    CONSTRAINT migration_progress_status_check
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'rolled_back'))
);

CREATE OR REPLACE TRIGGER set_organizations_updated_at BEFORE UPDATE ON public.organizations
    FOR EACH ROW EXECUTE FUNCTION public.handle_updated_at();
CREATE OR REPLACE TRIGGER set_organization_memberships_updated_at BEFORE UPDATE ON public.organization_memberships
    FOR EACH ROW EXECUTE FUNCTION public.handle_updated_at();

-- Deny by default until ...000002 adds the policies (the API roles get table grants by default).
ALTER TABLE public.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organization_memberships ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------------------
-- organization_id on the tenant tables: nullable, no default (catalog-only change, no rewrite).
-- ---------------------------------------------------------------------------------------------------
ALTER TABLE public.profiles ADD COLUMN IF NOT EXISTS organization_id uuid;
ALTER TABLE public.audit_reports ADD COLUMN IF NOT EXISTS organization_id uuid;
ALTER TABLE public.automation_jobs ADD COLUMN IF NOT EXISTS organization_id uuid;
ALTER TABLE public.generated_automations ADD COLUMN IF NOT EXISTS organization_id uuid;
DO $$
BEGIN
    IF to_regclass('public.waitlist') IS NOT NULL THEN
        ALTER TABLE public.waitlist ADD COLUMN IF NOT EXISTS organization_id uuid;
        -- The optional waitlist is small: its index is built here.
        CREATE INDEX IF NOT EXISTS idx_waitlist_organization_id ON public.waitlist (organization_id);
    END IF;
END
$$;

-- The home of rows that no user could read before the migration (no user_id): no members, ever.
INSERT INTO public.organizations (slug, name, plan, settings, is_default)
VALUES ('unassigned-legacy-rows', 'Unassigned legacy rows', 'free',
        '{"created_by_migration": "20250904000001", "purpose": "rows without a user: readable by no user"}'::jsonb,
        false)
ON CONFLICT (slug) DO NOTHING;

-- ---------------------------------------------------------------------------------------------------
-- Helper functions. SECURITY DEFINER with an empty search_path: they read organization_memberships
-- without going through its RLS (no policy recursion) and cannot be hijacked through search_path.
-- Policies call them once per statement as  organization_id = ANY (ARRAY(SELECT ...)).
-- ---------------------------------------------------------------------------------------------------
-- The function of an earlier version of this bundle had no argument: replace it, not overload it.
DROP FUNCTION IF EXISTS public.default_organization_id();

-- A user's default organization = their personal one (the caller's when no user is given).
CREATE OR REPLACE FUNCTION public.default_organization_id(p_user_id uuid DEFAULT NULL) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT o.id FROM public.organizations o
    WHERE o.id = coalesce(p_user_id, (SELECT auth.uid())) AND o.is_default
$$;

CREATE OR REPLACE FUNCTION public.unassigned_organization_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT o.id FROM public.organizations o WHERE o.slug = 'unassigned-legacy-rows'
$$;

-- The caller's organizations: their active memberships, plus their personal organization's id (= their own)
-- while that organization does not exist yet. That is a new user's first write: the BEFORE trigger creates the
-- organization in that very statement, and a STABLE helper reads with the statement's snapshot, so it could
-- not see the new membership (the INSERT, or its RETURNING under the SELECT policy, would be refused). Once
-- the organization exists, memberships alone decide.
CREATE OR REPLACE FUNCTION public.user_organization_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT m.organization_id FROM public.organization_memberships m
    WHERE m.user_id = (SELECT auth.uid()) AND m.status = 'active'
    UNION ALL
    SELECT (SELECT auth.uid())
    WHERE NOT EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = (SELECT auth.uid()))
$$;

CREATE OR REPLACE FUNCTION public.user_writable_organization_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT m.organization_id FROM public.organization_memberships m
    WHERE m.user_id = (SELECT auth.uid()) AND m.status = 'active' AND m.role IN ('admin', 'member')
    UNION ALL
    SELECT (SELECT auth.uid())
    WHERE NOT EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = (SELECT auth.uid()))
$$;

CREATE OR REPLACE FUNCTION public.user_admin_organization_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT m.organization_id FROM public.organization_memberships m
    WHERE m.user_id = (SELECT auth.uid()) AND m.status = 'active' AND m.role = 'admin'
$$;

CREATE OR REPLACE FUNCTION public.is_organization_member(p_organization_id uuid, p_user_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT EXISTS (SELECT 1 FROM public.organization_memberships m
                   WHERE m.organization_id = p_organization_id
                     AND m.user_id = coalesce(p_user_id, (SELECT auth.uid())) AND m.status = 'active')
$$;

CREATE OR REPLACE FUNCTION public.is_organization_admin(p_organization_id uuid, p_user_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT EXISTS (SELECT 1 FROM public.organization_memberships m
                   WHERE m.organization_id = p_organization_id
                     AND m.user_id = coalesce(p_user_id, (SELECT auth.uid()))
                     AND m.status = 'active' AND m.role = 'admin')
$$;

-- The personal organization of a user, created (with the user as its active admin) if it does not exist.
-- A user who later left their personal organization is not added back: it is only created once.
CREATE OR REPLACE FUNCTION public.ensure_personal_organization(p_user_id uuid) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    IF p_user_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.organizations o WHERE o.id = p_user_id) THEN
        INSERT INTO public.organizations (id, slug, name, is_default, created_by, settings)
        VALUES (p_user_id, 'personal-' || replace(p_user_id::text, '-', ''), 'Personal', true, p_user_id,
                '{"personal": true}'::jsonb)
        ON CONFLICT (id) DO NOTHING;
        INSERT INTO public.organization_memberships (organization_id, user_id, role, status, accepted_at)
        VALUES (p_user_id, p_user_id, 'admin', 'active', now())
        ON CONFLICT (organization_id, user_id) DO NOTHING;
    END IF;
    RETURN p_user_id;
END
$$;

-- Backwards compatibility: a row written by single-tenant code (no organization_id) goes to its user's
-- default (personal) organization (created on the fly for a new user), a row without a user to the
-- unassigned one;
-- generated_automations follow their job. Runs only WHEN (NEW.organization_id IS NULL). Reads the row
-- as jsonb so that it needs no column beyond the contract's (id, user_id, job_id).
CREATE OR REPLACE FUNCTION public.set_organization_id_from_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_row jsonb := to_jsonb(NEW);
    v_user uuid;
    v_org uuid;
BEGIN
    IF NEW.organization_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'generated_automations' THEN
        SELECT j.organization_id, j.user_id INTO v_org, v_user
        FROM public.automation_jobs j WHERE j.id = (v_row ->> 'job_id')::uuid;
    ELSE
        v_user := (v_row ->> CASE WHEN TG_TABLE_NAME = 'profiles' THEN 'id' ELSE 'user_id' END)::uuid;
    END IF;
    IF v_org IS NULL AND v_user IS NOT NULL THEN
        -- Their personal organization when they write there (the usual case), else the first organization
        -- they can write in; a user without any gets their personal organization now (a new sign-up).
        SELECT m.organization_id INTO v_org FROM public.organization_memberships m
        WHERE m.user_id = v_user AND m.status = 'active' AND m.role IN ('admin', 'member')
        ORDER BY (m.organization_id = v_user) DESC, m.accepted_at NULLS LAST, m.created_at
        LIMIT 1;
        IF v_org IS NULL THEN
            v_org := public.ensure_personal_organization(v_user);
        END IF;
    END IF;
    NEW.organization_id := coalesce(v_org, public.unassigned_organization_id());
    RETURN NEW;
END
$$;

-- New sign-ups (old code path): the profile Supabase creates on sign-up brings the personal organization.
CREATE OR REPLACE FUNCTION public.handle_new_profile_organization() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    PERFORM public.ensure_personal_organization(NEW.id);
    RETURN NULL;
END
$$;

-- The backfill (...000003, which sets mt.backfill = on in its batches) changes organization_id only: every
-- other column keeps its value whatever the installation's BEFORE UPDATE triggers (handle_updated_at ...)
-- did to it. Fires last (triggers fire in name order) and only on rows still without an organization.
CREATE OR REPLACE FUNCTION public.mt_backfill_keeps_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    v_org uuid;
BEGIN
    IF current_setting('mt.backfill', true) = 'on' THEN
        v_org := NEW.organization_id;
        NEW := OLD;
        NEW.organization_id := v_org;
    END IF;
    RETURN NEW;
END
$$;

-- An earlier version of this bundle hung membership creation on auth.users; that trigger is not ours to
-- drop on Supabase, so it is only removed where it exists (and only its owner can do it).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = 'auth.users'::regclass
                 AND tgname = 'on_auth_user_created_add_membership') THEN
        DROP TRIGGER IF EXISTS on_auth_user_created_add_membership ON auth.users;
    END IF;
END
$$;
DROP FUNCTION IF EXISTS public.handle_new_user_organization();

CREATE OR REPLACE TRIGGER mt_profiles_personal_organization AFTER INSERT ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_profile_organization();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist']
    LOOP
        CONTINUE WHEN to_regclass(format('public.%I', t)) IS NULL;
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE INSERT OR UPDATE ON public.%I FOR EACH ROW '
                       'WHEN (NEW.organization_id IS NULL) EXECUTE FUNCTION public.set_organization_id_from_user()',
                       'set_' || t || '_organization_id', t);
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE UPDATE ON public.%I FOR EACH ROW '
                       'WHEN (OLD.organization_id IS NULL AND NEW.organization_id IS NOT NULL) '
                       'EXECUTE FUNCTION public.mt_backfill_keeps_row()', 'zz_mt_' || t || '_backfill_keeps_row', t);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------------------
-- Organization-aware functions for Workers (called with the service role; not exposed to anon or
-- authenticated, since they take a user id as an argument). They rely only on the contract's columns.
-- ---------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.get_user_organizations(p_user_id uuid)
RETURNS TABLE (organization_id uuid, name text, slug text, plan text, is_default boolean, role text,
               status text, joined_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT o.id, o.name, o.slug, o.plan, o.is_default, m.role, m.status, coalesce(m.accepted_at, m.created_at)
    FROM public.organization_memberships m
    JOIN public.organizations o ON o.id = m.organization_id
    WHERE m.user_id = p_user_id
    ORDER BY (m.status = 'active') DESC, o.is_default DESC, o.name
$$;

CREATE OR REPLACE FUNCTION public.validate_organization_access(p_user_id uuid, p_organization_id uuid,
                                                               p_required_role text DEFAULT 'member')
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.organization_memberships m
        WHERE m.user_id = p_user_id AND m.organization_id = p_organization_id AND m.status = 'active'
          AND array_position(ARRAY['guest', 'member', 'admin'], m.role)
              >= coalesce(array_position(ARRAY['guest', 'member', 'admin'], p_required_role), 4)
    )
$$;

-- automation_type and workflow_data are not in the contract: they are written only where the
-- installation has them (the statement is built from the catalog at call time).
CREATE OR REPLACE FUNCTION public.create_organization_automation_job(
    p_user_id uuid, p_organization_id uuid, p_automation_type text DEFAULT 'n8n',
    p_audit_report_id uuid DEFAULT NULL, p_workflow_data jsonb DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_id uuid;
    v_cols text := 'user_id, organization_id, audit_report_id, status';
    v_vals text := '$1, $2, $3, ''pending''';
BEGIN
    IF NOT public.validate_organization_access(p_user_id, p_organization_id, 'member') THEN
        RAISE EXCEPTION 'user % may not create jobs in organization %', p_user_id, p_organization_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_audit_report_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM public.audit_reports r
        WHERE r.id = p_audit_report_id AND r.organization_id = p_organization_id) THEN
        RAISE EXCEPTION 'audit report % does not belong to organization %', p_audit_report_id, p_organization_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF p_automation_type IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'public.automation_jobs'::regclass
          AND a.attname = 'automation_type' AND NOT a.attisdropped) THEN
        v_cols := v_cols || ', automation_type';
        v_vals := v_vals || ', $4';
    END IF;
    IF p_workflow_data IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'public.automation_jobs'::regclass
          AND a.attname = 'workflow_data' AND NOT a.attisdropped) THEN
        v_cols := v_cols || ', workflow_data';
        v_vals := v_vals || ', $5';
    END IF;
    -- An installation's own NOT NULL columns without a default (e.g. progress, workflow_data) get the neutral
    -- value of their type: a Workers job must be insertable on any installation within the contract.
    SELECT v_cols || coalesce(string_agg(', ' || quote_ident(a.attname), '' ORDER BY a.attnum), ''),
           v_vals || coalesce(string_agg(', ' || CASE
               WHEN t.typcategory = 'N' THEN '0'
               WHEN t.typcategory = 'B' THEN 'false'
               WHEN t.typcategory = 'A' THEN '''{}'''
               WHEN t.typname IN ('json', 'jsonb') THEN '''{}'''
               WHEN t.typcategory = 'D' THEN 'now()'
               ELSE '''''' END || '::' || pg_catalog.format_type(a.atttypid, a.atttypmod), '' ORDER BY a.attnum), '')
    INTO v_cols, v_vals
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = 'public.automation_jobs'::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attnotnull AND a.attidentity = '' AND a.attgenerated = ''
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum)
      AND a.attname <> ALL (string_to_array(replace(v_cols, ' ', ''), ','));
    EXECUTE format('INSERT INTO public.automation_jobs (%s) VALUES (%s) RETURNING id', v_cols, v_vals)
        INTO v_id USING p_user_id, p_organization_id, p_audit_report_id, p_automation_type, p_workflow_data;
    RETURN v_id;
END
$$;

-- The result type changed (the job as jsonb instead of optional columns): replace an older version.
DO $$
BEGIN
    IF to_regprocedure('public.get_organization_automation_jobs(uuid,text,integer,integer)') IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                       WHERE p.oid = to_regprocedure('public.get_organization_automation_jobs(uuid,text,integer,integer)')
                         AND 'job' = ANY (p.proargnames)) THEN
        DROP FUNCTION public.get_organization_automation_jobs(uuid, text, integer, integer);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION public.get_organization_automation_jobs(
    p_organization_id uuid, p_status text DEFAULT NULL, p_limit integer DEFAULT 50, p_offset integer DEFAULT 0)
RETURNS TABLE (id uuid, user_id uuid, organization_id uuid, audit_report_id uuid, status text,
               created_at timestamptz, job jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT j.id, j.user_id, j.organization_id, j.audit_report_id, j.status, j.created_at, to_jsonb(j)
    FROM public.automation_jobs j
    WHERE j.organization_id = p_organization_id AND (p_status IS NULL OR j.status = p_status)
    ORDER BY j.created_at DESC
    LIMIT least(greatest(coalesce(p_limit, 50), 0), 1000) OFFSET greatest(coalesce(p_offset, 0), 0)
$$;

CREATE OR REPLACE FUNCTION public.get_organization_usage_stats(p_organization_id uuid)
RETURNS TABLE (organization_id uuid, active_members bigint, total_reports bigint, reports_last_30_days bigint,
               total_jobs bigint, completed_jobs bigint, failed_jobs bigint, total_automations bigint,
               last_activity_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT p_organization_id,
           (SELECT count(*) FROM public.organization_memberships m
            WHERE m.organization_id = p_organization_id AND m.status = 'active'),
           (SELECT count(*) FROM public.audit_reports r WHERE r.organization_id = p_organization_id),
           (SELECT count(*) FROM public.audit_reports r
            WHERE r.organization_id = p_organization_id AND r.created_at >= now() - interval '30 days'),
           (SELECT count(*) FROM public.automation_jobs j WHERE j.organization_id = p_organization_id),
           (SELECT count(*) FROM public.automation_jobs j
            WHERE j.organization_id = p_organization_id AND j.status = 'completed'),
           (SELECT count(*) FROM public.automation_jobs j
            WHERE j.organization_id = p_organization_id AND j.status = 'failed'),
           (SELECT count(*) FROM public.generated_automations g WHERE g.organization_id = p_organization_id),
           greatest((SELECT max(r.created_at) FROM public.audit_reports r WHERE r.organization_id = p_organization_id),
                    (SELECT max(j.created_at) FROM public.automation_jobs j
                     WHERE j.organization_id = p_organization_id))
$$;

-- For the application: create an organization and become its admin (users cannot insert memberships
-- into organizations they do not administer). The slugs of personal and unassigned organizations are
-- reserved, so nobody can squat a future user's personal organization.
CREATE OR REPLACE FUNCTION public.create_organization(p_name text, p_slug text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
DECLARE
    v_user uuid := (SELECT auth.uid());
    v_org uuid;
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'not authenticated' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_slug LIKE 'personal-%' OR p_slug = 'unassigned-legacy-rows' THEN
        RAISE EXCEPTION 'slug % is reserved', p_slug USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO public.organizations (name, slug, created_by) VALUES (p_name, p_slug, v_user) RETURNING id INTO v_org;
    INSERT INTO public.organization_memberships (organization_id, user_id, role, status, accepted_at)
    VALUES (v_org, v_user, 'admin', 'active', now());
    RETURN v_org;
END
$$;

-- Monitoring view from the runbook; security_invoker so it never bypasses RLS.
CREATE OR REPLACE VIEW public.organization_stats WITH (security_invoker = true) AS
SELECT o.id AS organization_id,
       o.name,
       o.slug,
       o.plan,
       o.is_default,
       o.created_at,
       (SELECT count(*) FROM public.organization_memberships m
        WHERE m.organization_id = o.id AND m.status = 'active') AS active_members,
       (SELECT count(*) FROM public.audit_reports r WHERE r.organization_id = o.id) AS total_reports,
       (SELECT count(*) FROM public.automation_jobs j WHERE j.organization_id = o.id) AS total_jobs,
       (SELECT count(*) FROM public.generated_automations g WHERE g.organization_id = o.id) AS total_automations,
       (SELECT max(r.created_at) FROM public.audit_reports r WHERE r.organization_id = o.id) AS last_report_at
FROM public.organizations o;

-- ---------------------------------------------------------------------------------------------------
-- Explicit grants (Supabase's default privileges would give anon everything on new objects).
-- ---------------------------------------------------------------------------------------------------
REVOKE ALL ON public.organizations, public.organization_memberships, public.organization_stats,
    public.migration_progress FROM PUBLIC, anon, authenticated, service_role;
-- Admins rename their organization; plan, is_default and ownership are not theirs to change.
GRANT SELECT, DELETE ON public.organizations TO authenticated;
GRANT UPDATE (name, slug, settings) ON public.organizations TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.organization_memberships TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.organizations, public.organization_memberships TO service_role;
GRANT SELECT ON public.organization_stats TO authenticated, service_role;
GRANT SELECT ON public.migration_progress TO service_role;

REVOKE ALL ON FUNCTION public.default_organization_id(uuid), public.unassigned_organization_id(),
    public.user_organization_ids(), public.user_writable_organization_ids(), public.user_admin_organization_ids(),
    public.is_organization_member(uuid, uuid), public.is_organization_admin(uuid, uuid),
    public.ensure_personal_organization(uuid), public.set_organization_id_from_user(),
    public.handle_new_profile_organization(), public.mt_backfill_keeps_row(),
    public.get_user_organizations(uuid), public.validate_organization_access(uuid, uuid, text),
    public.create_organization_automation_job(uuid, uuid, text, uuid, jsonb),
    public.get_organization_automation_jobs(uuid, text, integer, integer),
    public.get_organization_usage_stats(uuid), public.create_organization(text, text)
    FROM PUBLIC, anon, authenticated, service_role;
-- Used by policies: the roles the policies apply to must be able to execute them.
GRANT EXECUTE ON FUNCTION public.user_organization_ids(), public.user_writable_organization_ids(),
    public.user_admin_organization_ids(), public.is_organization_member(uuid, uuid),
    public.is_organization_admin(uuid, uuid), public.create_organization(text, text),
    public.default_organization_id(uuid)
    TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.unassigned_organization_id() TO anon, authenticated, service_role;
-- Workers (service role only).
GRANT EXECUTE ON FUNCTION public.get_user_organizations(uuid), public.validate_organization_access(uuid, uuid, text),
    public.create_organization_automation_job(uuid, uuid, text, uuid, jsonb),
    public.get_organization_automation_jobs(uuid, text, integer, integer),
    public.get_organization_usage_stats(uuid), public.ensure_personal_organization(uuid)
    TO service_role;

COMMIT;

RESET lock_timeout;
RESET statement_timeout;
RESET client_min_messages;
