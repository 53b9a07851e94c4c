-- test-multi-tenant-migration.sql
-- What: validation tests of the multi-tenant migration, by category. Each category prints detail lines
--   ("<Category>: PASS|FAIL ...") and exactly one "RESULT: <Category> tests PASSED|FAILED" via RAISE NOTICE:
--   Schema, RLS Policies, Data Migration, Functions, Performance/Indexes.
--   The RLS category impersonates real users of two organizations (SET LOCAL ROLE authenticated and
--   request.jwt.claims), anon and service_role, on test data created inside a subtransaction that is
--   always rolled back: nothing is left behind.
-- Locks: read-only apart from the rolled-back test data (row locks only); safe on a live database.
-- Idempotent: yes, it changes nothing. Run after 20250904000003:  psql -v ON_ERROR_STOP=1 -f this-file

-- ===================================================================================================
-- Schema
-- ===================================================================================================
DO $$
DECLARE
    v_fail text[] := '{}';
    v_ok text[] := '{}';
    t text;
    c text;
    v_n bigint;
BEGIN
    BEGIN
        FOREACH t IN ARRAY ARRAY['organizations', 'organization_memberships', 'migration_progress'] LOOP
            IF to_regclass('public.' || t) IS NULL THEN
                v_fail := v_fail || format('table public.%s is missing', t);
            END IF;
        END LOOP;
        FOREACH c IN ARRAY ARRAY['organizations.id', 'organizations.slug', 'organizations.name', 'organizations.plan',
                                 'organizations.settings', 'organizations.is_default', 'organizations.created_at',
                                 'organizations.updated_at', 'organization_memberships.organization_id',
                                 'organization_memberships.user_id', 'organization_memberships.role',
                                 'organization_memberships.status', 'organization_memberships.invited_at',
                                 'organization_memberships.accepted_at', 'migration_progress.table_name',
                                 'migration_progress.rows_total', 'migration_progress.rows_done',
                                 'migration_progress.last_key', 'migration_progress.status',
                                 'migration_progress.started_at', 'migration_progress.finished_at',
                                 'migration_progress.updated_at'] LOOP
            IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                           WHERE table_schema = 'public' AND table_name = split_part(c, '.', 1)
                             AND column_name = split_part(c, '.', 2)) THEN
                v_fail := v_fail || format('column %s is missing', c);
            END IF;
        END LOOP;
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                       WHERE conrelid = 'public.organization_memberships'::regclass AND contype = 'u'
                         AND pg_get_constraintdef(oid) = 'UNIQUE (organization_id, user_id)') THEN
            v_fail := v_fail || 'organization_memberships lacks UNIQUE (organization_id, user_id)'::text;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                       WHERE conrelid = 'public.organization_memberships'::regclass AND contype = 'f'
                         AND confrelid = 'auth.users'::regclass) THEN
            v_fail := v_fail || 'organization_memberships.user_id does not reference auth.users'::text;
        END IF;
        FOREACH t IN ARRAY ARRAY['organizations', 'organization_memberships'] LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
                           WHERE tg.tgrelid = format('public.%I', t)::regclass AND p.proname = 'handle_updated_at') THEN
                v_fail := v_fail || format('%s has no handle_updated_at trigger', t);
            END IF;
        END LOOP;
        FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist']
        LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            SELECT count(*) INTO v_n FROM pg_attribute
            WHERE attrelid = format('public.%I', t)::regclass AND attname = 'organization_id' AND NOT attisdropped
              AND atttypid = 'uuid'::regtype AND attnotnull;
            IF v_n <> 1 THEN
                v_fail := v_fail || format('%s.organization_id missing, not uuid or nullable', t);
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_constraint
                           WHERE conrelid = format('public.%I', t)::regclass AND contype = 'f' AND convalidated
                             AND confrelid = 'public.organizations'::regclass) THEN
                v_fail := v_fail || format('%s: no validated foreign key to organizations', t);
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
                           WHERE tg.tgrelid = format('public.%I', t)::regclass AND NOT tg.tgisinternal
                             AND p.proname = 'set_organization_id_from_user' AND tg.tgenabled <> 'D') THEN
                v_fail := v_fail || format('%s: no trigger filling organization_id for single-tenant writers', t);
            END IF;
        END LOOP;
        SELECT count(*) INTO v_n FROM public.organizations WHERE is_default;
        IF v_n <> 1 THEN
            v_fail := v_fail || format('expected exactly one default organization, found %s', v_n);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('public.organization_stats') AND relkind = 'v'
                         AND 'security_invoker=true' = ANY (reloptions)) THEN
            v_fail := v_fail || 'view organization_stats missing or not security_invoker'::text;
        END IF;
        -- No view over a tenant table may bypass RLS.
        FOR t IN SELECT DISTINCT v.oid::regclass::text FROM pg_class v
                 JOIN pg_rewrite rw ON rw.ev_class = v.oid
                 JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                                 AND d.refclassid = 'pg_class'::regclass
                 JOIN pg_class tt ON tt.oid = d.refobjid
                 WHERE v.relkind = 'v' AND tt.relnamespace = 'public'::regnamespace
                   AND tt.relname IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations',
                                      'waitlist', 'organizations', 'organization_memberships')
                   AND NOT coalesce('security_invoker=true' = ANY (v.reloptions), false)
        LOOP
            v_fail := v_fail || format('view %s over a tenant table is not security_invoker', t);
        END LOOP;
        IF has_table_privilege('anon', 'public.organizations', 'SELECT')
           OR has_table_privilege('anon', 'public.organization_memberships', 'SELECT')
           OR has_table_privilege('anon', 'public.migration_progress', 'SELECT') THEN
            v_fail := v_fail || 'anon has privileges on organizations, memberships or migration_progress'::text;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        v_fail := v_fail || ('unexpected error: ' || SQLERRM);
    END;
    FOREACH c IN ARRAY v_fail LOOP
        RAISE NOTICE 'Schema: FAIL %', c;
    END LOOP;
    IF cardinality(v_fail) = 0 THEN
        RAISE NOTICE 'Schema: PASS tables, columns, constraints, triggers, default organization, views, grants';
        RAISE NOTICE 'RESULT: Schema tests PASSED';
    ELSE
        RAISE NOTICE 'RESULT: Schema tests FAILED';
    END IF;
END
$$;

-- ===================================================================================================
-- RLS Policies
-- ===================================================================================================
DO $$
DECLARE
    v_fail text[] := '{}';
    v_ok text[] := '{}';
    t text;
    c text;
    v_n bigint;
    v_m bigint;
    v_user_a uuid := gen_random_uuid();
    v_user_b uuid := gen_random_uuid();
    v_org_a uuid;
    v_org_b uuid;
    v_rep_a uuid;
    v_rep_b uuid;
    v_job_a uuid;
    v_job_b uuid;
    v_tables text[];
    v_errored boolean;
BEGIN
    BEGIN
        -- Catalog checks.
        FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist',
                                 'organizations', 'organization_memberships'] LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            v_tables := v_tables || t;
            IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = format('public.%I', t)::regclass) THEN
                v_fail := v_fail || format('RLS is not enabled on %s', t);
            END IF;
            FOREACH c IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] LOOP
                CONTINUE WHEN t = 'organizations' AND c = 'INSERT';  -- created via create_organization()
                IF NOT EXISTS (SELECT 1 FROM pg_policies
                               WHERE schemaname = 'public' AND tablename = t AND cmd IN (c, 'ALL')
                                 AND 'authenticated' = ANY (roles)) THEN
                    v_fail := v_fail || format('%s has no %s policy for authenticated', t, c);
                END IF;
            END LOOP;
            IF EXISTS (SELECT 1 FROM pg_policies
                       WHERE schemaname = 'public' AND tablename = t AND cmd IN ('SELECT', 'ALL', 'UPDATE', 'DELETE')
                         AND (roles && ARRAY['anon', 'public']::name[])) THEN
                v_fail := v_fail || format('%s has a policy letting anon read or change rows', t);
            END IF;
            IF EXISTS (SELECT 1 FROM pg_policies
                       WHERE schemaname = 'public' AND tablename = t AND cmd IN ('UPDATE', 'ALL')
                         AND (qual IS NULL OR with_check IS NULL)) THEN
                v_fail := v_fail || format('%s has an UPDATE policy without both USING and WITH CHECK', t);
            END IF;
            IF EXISTS (SELECT 1 FROM pg_policies
                       WHERE schemaname = 'public' AND tablename = t AND 'authenticated' = ANY (roles)
                         AND coalesce(qual, '') || coalesce(with_check, '') NOT LIKE '%organization%') THEN
                v_fail := v_fail || format('%s has an authenticated policy that is not organization-based', t);
            END IF;
        END LOOP;
        IF EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                     AND tablename IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations')
                     AND policyname NOT LIKE 'mt\_%') THEN
            v_fail := v_fail || 'single-tenant policies are still present on tenant tables'::text;
        END IF;

        -- Impersonation, on test data that is rolled back at the end of this block.
        BEGIN
            INSERT INTO auth.users (id, email) VALUES (v_user_a, 'mt-test-a-' || v_user_a || '@example.test'),
                                                      (v_user_b, 'mt-test-b-' || v_user_b || '@example.test');
            INSERT INTO public.organizations (slug, name) VALUES ('mt-test-a-' || left(v_user_a::text, 8), 'Test A')
                RETURNING id INTO v_org_a;
            INSERT INTO public.organizations (slug, name) VALUES ('mt-test-b-' || left(v_user_b::text, 8), 'Test B')
                RETURNING id INTO v_org_b;
            DELETE FROM public.organization_memberships WHERE user_id IN (v_user_a, v_user_b);
            INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
            VALUES (v_org_a, v_user_a, 'admin', 'active'), (v_org_b, v_user_b, 'member', 'active');
            INSERT INTO public.profiles (id, full_name, organization_id)
            VALUES (v_user_a, 'Test A', v_org_a), (v_user_b, 'Test B', v_org_b)
            ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id;
            INSERT INTO public.audit_reports (user_id, organization_id, title, process_description)
            VALUES (v_user_a, v_org_a, 'A report', 'A process') RETURNING id INTO v_rep_a;
            INSERT INTO public.audit_reports (user_id, organization_id, title, process_description)
            VALUES (v_user_b, v_org_b, 'B report', 'B process') RETURNING id INTO v_rep_b;
            INSERT INTO public.automation_jobs (user_id, organization_id, audit_report_id, status)
            VALUES (v_user_a, v_org_a, v_rep_a, 'completed') RETURNING id INTO v_job_a;
            INSERT INTO public.automation_jobs (user_id, organization_id, audit_report_id, status)
            VALUES (v_user_b, v_org_b, v_rep_b, 'completed') RETURNING id INTO v_job_b;
            INSERT INTO public.generated_automations (job_id, organization_id, name)
            VALUES (v_job_a, v_org_a, 'A automation'), (v_job_b, v_org_b, 'B automation');

            -- ---- as user A (admin of organization A) ----
            SET LOCAL ROLE authenticated;
            PERFORM set_config('request.jwt.claims',
                               json_build_object('sub', v_user_a, 'role', 'authenticated')::text, true);
            FOREACH t IN ARRAY v_tables LOOP
                EXECUTE format('SELECT count(*) FILTER (WHERE %s IS DISTINCT FROM $1), count(*) FROM public.%I',
                               CASE t WHEN 'organizations' THEN 'id' ELSE 'organization_id' END, t)
                    INTO v_n, v_m USING v_org_a;
                IF v_n <> 0 THEN
                    v_fail := v_fail || format('user A sees %s rows of other organizations in %s', v_n, t);
                END IF;
                IF v_m = 0 AND t NOT IN ('waitlist') THEN
                    v_fail := v_fail || format('user A sees none of the rows of organization A in %s', t);
                END IF;
            END LOOP;
            SELECT count(*) INTO v_n FROM public.audit_reports WHERE id = v_rep_b;
            IF v_n <> 0 THEN
                v_fail := v_fail || 'user A can read a report of organization B'::text;
            END IF;
            v_errored := false;
            BEGIN
                INSERT INTO public.audit_reports (user_id, organization_id, title, process_description)
                VALUES (v_user_a, v_org_b, 'intrusion', 'x');
            EXCEPTION WHEN insufficient_privilege THEN
                v_errored := true;
            END;
            IF NOT v_errored THEN
                v_fail := v_fail || 'user A could insert a report into organization B'::text;
            END IF;
            UPDATE public.audit_reports SET title = 'hacked' WHERE id = v_rep_b;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            DELETE FROM public.automation_jobs WHERE id = v_job_b;
            GET DIAGNOSTICS v_m = ROW_COUNT;
            IF v_n + v_m <> 0 THEN
                v_fail := v_fail || 'user A could update or delete rows of organization B'::text;
            END IF;
            v_errored := false;
            BEGIN
                UPDATE public.audit_reports SET organization_id = v_org_b WHERE id = v_rep_a;
            EXCEPTION WHEN insufficient_privilege THEN
                v_errored := true;
            END;
            IF NOT v_errored THEN
                v_fail := v_fail || 'user A could move a report into organization B'::text;
            END IF;
            v_errored := false;
            BEGIN
                INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
                VALUES (v_org_b, v_user_a, 'admin', 'active');
            EXCEPTION WHEN insufficient_privilege THEN
                v_errored := true;
            END;
            IF NOT v_errored THEN
                v_fail := v_fail || 'user A could add themselves to organization B'::text;
            END IF;
            -- Legacy single-tenant write (no organization_id) lands in A's organization.
            INSERT INTO public.audit_reports (user_id, title, process_description)
            VALUES (v_user_a, 'legacy write', 'old client');
            SELECT count(*) INTO v_n FROM public.audit_reports WHERE title = 'legacy write' AND organization_id = v_org_a;
            IF v_n <> 1 THEN
                v_fail := v_fail || 'a single-tenant insert did not get the writer''s organization'::text;
            END IF;

            -- ---- as user B (plain member of organization B) ----
            PERFORM set_config('request.jwt.claims',
                               json_build_object('sub', v_user_b, 'role', 'authenticated')::text, true);
            SELECT count(*) INTO v_n FROM public.audit_reports;
            SELECT count(*) INTO v_m FROM public.audit_reports WHERE id = v_rep_b;
            IF v_n <> 1 OR v_m <> 1 THEN
                v_fail := v_fail || format('user B sees %s reports (expected exactly their own 1)', v_n);
            END IF;
            UPDATE public.organization_memberships SET role = 'admin' WHERE user_id = v_user_b;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            IF v_n <> 0 THEN
                v_fail := v_fail || 'user B could raise their own role'::text;
            END IF;
            v_errored := false;
            BEGIN
                INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
                VALUES (v_org_a, v_user_b, 'member', 'active');
            EXCEPTION WHEN insufficient_privilege THEN
                v_errored := true;
            END;
            IF NOT v_errored THEN
                v_fail := v_fail || 'user B could add themselves to organization A'::text;
            END IF;
            SELECT count(*) INTO v_n FROM public.organizations WHERE id = v_org_a;
            IF v_n <> 0 THEN
                v_fail := v_fail || 'user B can see organization A'::text;
            END IF;

            -- ---- anon sees nothing ----
            RESET ROLE;
            SET LOCAL ROLE anon;
            PERFORM set_config('request.jwt.claims', json_build_object('role', 'anon')::text, true);
            FOREACH t IN ARRAY v_tables LOOP
                BEGIN
                    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM public.%I LIMIT 1) s', t) INTO v_n;
                EXCEPTION WHEN insufficient_privilege THEN
                    v_n := 0;
                END;
                IF v_n <> 0 THEN
                    v_fail := v_fail || format('anon can read %s', t);
                END IF;
            END LOOP;

            -- ---- service_role sees everything ----
            RESET ROLE;
            SET LOCAL ROLE service_role;
            PERFORM set_config('request.jwt.claims', json_build_object('role', 'service_role')::text, true);
            SELECT count(*) INTO v_n FROM public.audit_reports WHERE id IN (v_rep_a, v_rep_b);
            IF v_n <> 2 THEN
                v_fail := v_fail || 'service_role does not see the reports of both organizations'::text;
            END IF;
            RESET ROLE;
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'mt_test_rollback';
        EXCEPTION WHEN raise_exception THEN
            IF SQLERRM <> 'mt_test_rollback' THEN
                RAISE;
            END IF;
        END;
    EXCEPTION WHEN OTHERS THEN
        v_fail := v_fail || ('unexpected error: ' || SQLERRM);
    END;
    FOREACH c IN ARRAY v_fail LOOP
        RAISE NOTICE 'RLS Policies: FAIL %', c;
    END LOOP;
    IF cardinality(v_fail) = 0 THEN
        RAISE NOTICE 'RLS Policies: PASS RLS enabled, policies per command, impersonated users isolated';
        RAISE NOTICE 'RESULT: RLS Policies tests PASSED';
    ELSE
        RAISE NOTICE 'RESULT: RLS Policies tests FAILED';
    END IF;
END
$$;

-- ===================================================================================================
-- Data Migration
-- ===================================================================================================
DO $$
DECLARE
    v_fail text[] := '{}';
    t text;
    c text;
    v_n bigint;
BEGIN
    BEGIN
        FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist']
        LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            IF NOT (SELECT attnotnull FROM pg_attribute
                    WHERE attrelid = format('public.%I', t)::regclass AND attname = 'organization_id') THEN
                EXECUTE format('SELECT count(*) FROM public.%I WHERE organization_id IS NULL', t) INTO v_n;
                IF v_n <> 0 THEN
                    v_fail := v_fail || format('%s rows of %s have no organization', v_n, t);
                END IF;
            END IF;
            SELECT count(*) INTO v_n FROM public.migration_progress WHERE table_name = t AND status = 'done';
            IF v_n <> 1 THEN
                v_fail := v_fail || format('migration_progress does not show %s as done', t);
            END IF;
        END LOOP;
        SELECT count(*) INTO v_n FROM public.migration_progress
        WHERE table_name = 'organization_memberships' AND status = 'done';
        IF v_n <> 1 THEN
            v_fail := v_fail || 'migration_progress does not show organization_memberships as done'::text;
        END IF;
        SELECT count(*) INTO v_n FROM auth.users u
        WHERE NOT EXISTS (SELECT 1 FROM public.organization_memberships m WHERE m.user_id = u.id AND m.status = 'active');
        IF v_n <> 0 THEN
            v_fail := v_fail || format('%s users have no active membership', v_n);
        END IF;
        SELECT count(*) INTO v_n FROM public.generated_automations g
        JOIN public.automation_jobs j ON j.id = g.job_id WHERE g.organization_id <> j.organization_id;
        IF v_n <> 0 THEN
            v_fail := v_fail || format('%s generated automations are not in their job''s organization', v_n);
        END IF;
        SELECT count(*) INTO v_n FROM public.automation_jobs j
        JOIN public.audit_reports r ON r.id = j.audit_report_id WHERE r.organization_id <> j.organization_id;
        IF v_n <> 0 THEN
            v_fail := v_fail || format('%s automation jobs are not in their report''s organization', v_n);
        END IF;
        SELECT count(*) INTO v_n FROM public.profiles p
        WHERE NOT EXISTS (SELECT 1 FROM public.organization_memberships m
                          WHERE m.user_id = p.id AND m.organization_id = p.organization_id);
        IF v_n <> 0 THEN
            v_fail := v_fail || format('%s profiles are in an organization their user is not a member of', v_n);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        v_fail := v_fail || ('unexpected error: ' || SQLERRM);
    END;
    FOREACH c IN ARRAY v_fail LOOP
        RAISE NOTICE 'Data Migration: FAIL %', c;
    END LOOP;
    IF cardinality(v_fail) = 0 THEN
        RAISE NOTICE 'Data Migration: PASS every row has an organization, every user an active membership';
        RAISE NOTICE 'RESULT: Data Migration tests PASSED';
    ELSE
        RAISE NOTICE 'RESULT: Data Migration tests FAILED';
    END IF;
END
$$;

-- ===================================================================================================
-- Functions
-- ===================================================================================================
DO $$
DECLARE
    v_fail text[] := '{}';
    c text;
    f record;
    v_user uuid;
    v_org uuid;
    v_job uuid;
    v_n bigint;
    v_errored boolean;
BEGIN
    BEGIN
        FOR f IN SELECT * FROM (VALUES
                ('public.user_organization_ids()', false),
                ('public.user_writable_organization_ids()', false),
                ('public.user_admin_organization_ids()', false),
                ('public.is_organization_member(uuid,uuid)', false),
                ('public.is_organization_admin(uuid,uuid)', false),
                ('public.default_organization_id()', false),
                ('public.get_user_organizations(uuid)', true),
                ('public.validate_organization_access(uuid,uuid,text)', true),
                ('public.create_organization_automation_job(uuid,uuid,text,uuid,jsonb)', true),
                ('public.get_organization_automation_jobs(uuid,text,integer,integer)', true),
                ('public.get_organization_usage_stats(uuid)', true)) AS x (sig, workers)
        LOOP
            IF to_regprocedure(f.sig) IS NULL THEN
                v_fail := v_fail || format('function %s is missing', f.sig);
                CONTINUE;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = to_regprocedure(f.sig) AND p.prosecdef
                             AND EXISTS (SELECT 1 FROM unnest(p.proconfig) cfg WHERE cfg LIKE 'search\_path=%')) THEN
                v_fail := v_fail || format('%s is not SECURITY DEFINER with a fixed search_path', f.sig);
            END IF;
            IF f.workers THEN
                IF has_function_privilege('anon', f.sig, 'EXECUTE')
                   OR has_function_privilege('authenticated', f.sig, 'EXECUTE') THEN
                    v_fail := v_fail || format('Workers function %s is executable by anon or authenticated', f.sig);
                END IF;
                IF NOT has_function_privilege('service_role', f.sig, 'EXECUTE') THEN
                    v_fail := v_fail || format('service_role cannot execute %s', f.sig);
                END IF;
            ELSIF (SELECT provolatile FROM pg_proc WHERE oid = to_regprocedure(f.sig)) <> 's' THEN
                v_fail := v_fail || format('helper %s is not STABLE', f.sig);
            END IF;
        END LOOP;

        SELECT m.user_id, m.organization_id INTO v_user, v_org FROM public.organization_memberships m
        WHERE m.status = 'active' AND m.role IN ('admin', 'member') LIMIT 1;
        IF v_user IS NULL THEN
            v_fail := v_fail || 'no active membership to test the functions with'::text;
        ELSE
            SELECT count(*) INTO v_n FROM public.get_user_organizations(v_user) g WHERE g.organization_id = v_org;
            IF v_n <> 1 THEN
                v_fail := v_fail || 'get_user_organizations does not list the user''s organization'::text;
            END IF;
            IF NOT public.validate_organization_access(v_user, v_org, 'member')
               OR public.validate_organization_access(gen_random_uuid(), v_org, 'guest')
               OR NOT public.is_organization_member(v_org, v_user) THEN
                v_fail := v_fail || 'validate_organization_access / is_organization_member give wrong answers'::text;
            END IF;
            SELECT count(*) INTO v_n FROM public.get_organization_usage_stats(v_org) s WHERE s.active_members >= 1;
            IF v_n <> 1 THEN
                v_fail := v_fail || 'get_organization_usage_stats returns no usable row'::text;
            END IF;
            PERFORM 1 FROM public.organization_stats LIMIT 1;
            BEGIN
                v_job := public.create_organization_automation_job(v_user, v_org, 'n8n', NULL, '{"test": true}');
                SELECT count(*) INTO v_n FROM public.get_organization_automation_jobs(v_org, 'pending', 1000) j
                WHERE j.id = v_job;
                IF v_n <> 1 THEN
                    v_fail := v_fail || 'get_organization_automation_jobs does not list a new job'::text;
                END IF;
                v_errored := false;
                BEGIN
                    PERFORM public.create_organization_automation_job(gen_random_uuid(), v_org);
                EXCEPTION WHEN insufficient_privilege THEN
                    v_errored := true;
                END;
                IF NOT v_errored THEN
                    v_fail := v_fail || 'create_organization_automation_job accepted a non-member'::text;
                END IF;
                RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'mt_test_rollback';
            EXCEPTION WHEN raise_exception THEN
                IF SQLERRM <> 'mt_test_rollback' THEN
                    RAISE;
                END IF;
            END;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        v_fail := v_fail || ('unexpected error: ' || SQLERRM);
    END;
    FOREACH c IN ARRAY v_fail LOOP
        RAISE NOTICE 'Functions: FAIL %', c;
    END LOOP;
    IF cardinality(v_fail) = 0 THEN
        RAISE NOTICE 'Functions: PASS helpers and Workers functions exist, are secured and answer correctly';
        RAISE NOTICE 'RESULT: Functions tests PASSED';
    ELSE
        RAISE NOTICE 'RESULT: Functions tests FAILED';
    END IF;
END
$$;

-- ===================================================================================================
-- Performance/Indexes
-- ===================================================================================================
DO $$
DECLARE
    v_fail text[] := '{}';
    t text;
    c text;
    p record;
    v_user uuid;
    v_org uuid;
    v_share numeric;
    v_start timestamptz;
    v_ms numeric;
    v_plan text;
    v_n bigint;
BEGIN
    BEGIN
        FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist']
        LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                             ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                           WHERE i.indrelid = format('public.%I', t)::regclass AND i.indisvalid
                             AND a.attname = 'organization_id') THEN
                v_fail := v_fail || format('%s has no valid index leading with organization_id', t);
            END IF;
        END LOOP;
        FOR c IN SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid
                 WHERE r.relnamespace = 'public'::regnamespace AND NOT i.indisvalid LOOP
            v_fail := v_fail || format('invalid index %s', c);
        END LOOP;
        IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                       WHERE i.indrelid = 'public.organization_memberships'::regclass AND a.attname = 'user_id') THEN
            v_fail := v_fail || 'organization_memberships has no index leading with user_id'::text;
        END IF;
        -- Policies compute the tenant set once per statement: no per-row membership function calls.
        FOR p IN SELECT tablename, policyname, coalesce(qual, '') || ' ' || coalesce(with_check, '') AS expr
                 FROM pg_policies WHERE schemaname = 'public'
                   AND tablename IN ('profiles', 'audit_reports', 'automation_jobs', 'generated_automations',
                                     'waitlist', 'organizations', 'organization_memberships')
        LOOP
            IF p.expr ~ 'is_organization_(member|admin)\('
               OR (SELECT count(*) FROM regexp_matches(p.expr, 'organization_ids\(\)', 'g'))
                  <> (SELECT count(*) FROM regexp_matches(p.expr, 'ARRAY\( SELECT user_[a-z_]*organization_ids\(\)', 'g'))
               OR (SELECT count(*) FROM regexp_matches(p.expr, 'auth\.uid\(\)', 'g'))
                  <> (SELECT count(*) FROM regexp_matches(p.expr, 'SELECT auth\.uid\(\)', 'g')) THEN
                v_fail := v_fail || format('policy %s on %s calls a function per row', p.policyname, p.tablename);
            END IF;
        END LOOP;

        -- Typical operations as an impersonated member, against the 500 ms SLA.
        SELECT m.user_id, m.organization_id INTO v_user, v_org FROM public.organization_memberships m
        WHERE m.status = 'active' ORDER BY m.created_at DESC LIMIT 1;
        IF v_user IS NOT NULL THEN
            SELECT count(*) FILTER (WHERE organization_id = v_org)::numeric / greatest(count(*), 1)
            INTO v_share FROM (SELECT organization_id FROM public.audit_reports LIMIT 100000) s;
            BEGIN
                SET LOCAL ROLE authenticated;
                PERFORM set_config('request.jwt.claims',
                                   json_build_object('sub', v_user, 'role', 'authenticated')::text, true);
                v_start := clock_timestamp();
                SELECT count(*) INTO v_n FROM public.audit_reports;
                PERFORM * FROM public.audit_reports ORDER BY created_at DESC LIMIT 50;
                v_ms := extract(epoch FROM clock_timestamp() - v_start) * 1000;
                FOR c IN EXECUTE 'EXPLAIN SELECT count(*) FROM public.audit_reports' LOOP
                    v_plan := coalesce(v_plan, '') || c || ' ';
                END LOOP;
                RESET ROLE;
                RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'mt_test_rollback';
            EXCEPTION WHEN raise_exception THEN
                IF SQLERRM <> 'mt_test_rollback' THEN
                    RAISE;
                END IF;
            END;
            RAISE NOTICE 'Performance/Indexes: count + latest 50 reports as a member: % ms (% rows visible)',
                round(v_ms, 1), v_n;
            IF v_ms > 500 THEN
                v_fail := v_fail || format('typical operations took %s ms (SLA 500 ms)', round(v_ms));
            END IF;
            IF v_share < 0.05 AND v_plan NOT LIKE '%Index%' THEN
                v_fail := v_fail || 'counting a small organization''s reports does not use an index'::text;
            END IF;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        v_fail := v_fail || ('unexpected error: ' || SQLERRM);
    END;
    FOREACH c IN ARRAY v_fail LOOP
        RAISE NOTICE 'Performance/Indexes: FAIL %', c;
    END LOOP;
    IF cardinality(v_fail) = 0 THEN
        RAISE NOTICE 'Performance/Indexes: PASS organization indexes valid, set-based policies, SLA met';
        RAISE NOTICE 'RESULT: Performance/Indexes tests PASSED';
    ELSE
        RAISE NOTICE 'RESULT: Performance/Indexes tests FAILED';
    END IF;
END
$$;
