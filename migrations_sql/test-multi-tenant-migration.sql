-- test-multi-tenant-migration.sql
-- What: validation tests of the multi-tenant migration, by category. Each category prints detail lines
--   ("<Category>: PASS|FAIL ...") and exactly one "RESULT: <Category> tests PASSED|FAILED" via RAISE NOTICE:
--   Schema, RLS Policies, Data Migration, Functions, Performance/Indexes.
--   Isolation means what it meant before the migration: every user is alone in a personal organization, so
--   a user sees and writes only their own rows, cannot read or write another user's personal organization,
--   cannot add themselves to another organization and cannot raise their own role; a new sign-up (old code
--   path, with or without a profile) gets a personal organization; rows without a user belong to nobody.
--   The RLS category impersonates fresh test users (SET LOCAL ROLE authenticated, with the subject in both
--   request.jwt.claims and request.jwt.claim.sub: every auth.uid() Supabase shipped reads one of them),
--   anon and service_role (the nil UUID in claim.sub: nobody), on test data created inside a subtransaction that is always rolled back.
-- Test rows fit any installation: each is a copy of an existing row of the same table with only its keys
--   changed (unique columns get fresh values); in an empty table, NOT NULL columns without a default get a
--   value allowed by their CHECK constraint (else a neutral value of their type). See pg_temp.mt_test_row.
-- Privileges: the migration role (owner of the public tables, INSERT on auth.users for the test users,
--   membership in anon/authenticated/service_role for SET ROLE, TEMP on the database for the helper).
-- Locks: read-only apart from the rolled-back test data (row locks only); safe on a live database. The
--   session-local helper function pg_temp.mt_test_row is dropped at the end.
-- Idempotent: yes, it changes nothing. Run after 20250904000003:  psql -v ON_ERROR_STOP=1 -f this-file

-- squawk-ignore-file ban-drop-function
-- Justification: the one function dropped is the session-local helper this file creates (pg_temp).

SET lock_timeout = '3s';
-- Every category reads whole tenant tables at most a few times: minutes would mean something is wrong.
SET statement_timeout = '300s';

-- The INSERT statement (and its jsonb values) for one test row of p_table with p_keys set: a copy of an
-- existing row, or defaults + CHECK-allowed values when the table is empty. Run it with
--   EXECUTE stmt INTO id USING vals
-- (possibly under SET ROLE: the statement reads nothing). A key set to JSON null is left to the triggers.
CREATE OR REPLACE FUNCTION pg_temp.mt_test_row(p_table regclass, p_keys jsonb, OUT stmt text, OUT vals jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    v_copy jsonb;
    v_value jsonb;
    v_cols text[] := '{}';
    v_literal text;
BEGIN
    EXECUTE format('SELECT to_jsonb(t) FROM %s t LIMIT 1', p_table) INTO v_copy;
    vals := '{}'::jsonb;
    FOR a IN
        SELECT att.attname, att.attnotnull, t.typname, t.typcategory,
               (att.atthasdef) AS has_default,
               EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                       WHERE i.indrelid = p_table AND i.indisunique AND att.attnum = ANY (i.indkey)) AS is_unique
        FROM pg_catalog.pg_attribute att JOIN pg_catalog.pg_type t ON t.oid = att.atttypid
        WHERE att.attrelid = p_table AND att.attnum > 0 AND NOT att.attisdropped
          AND att.attgenerated = '' AND att.attidentity <> 'a'
        ORDER BY att.attnum
    LOOP
        IF p_keys ? a.attname THEN
            CONTINUE WHEN p_keys -> a.attname = 'null'::jsonb;
            v_value := p_keys -> a.attname;
        ELSIF v_copy IS NOT NULL AND a.is_unique AND v_copy -> a.attname <> 'null'::jsonb THEN
            -- A unique column of the copied row: a fresh value of its type.
            v_value := CASE WHEN a.typname = 'uuid' THEN to_jsonb(gen_random_uuid()::text)
                            WHEN a.typcategory = 'N' THEN to_jsonb(floor(random() * 1e9)::bigint + 1e9)
                            ELSE to_jsonb('mt-test-' || md5(random()::text) || '@example.test') END;
        ELSIF v_copy IS NOT NULL THEN
            CONTINUE WHEN v_copy -> a.attname IS NULL OR v_copy -> a.attname = 'null'::jsonb;
            v_value := v_copy -> a.attname;
        ELSIF a.attnotnull AND NOT a.has_default THEN
            -- Empty table: the first value a CHECK constraint on this column names, else a neutral one.
            SELECT (regexp_match(pg_catalog.pg_get_constraintdef(c.oid), '''((?:[^'']|'''')*)'''))[1]
            INTO v_literal
            FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = p_table AND c.contype = 'c'
              AND c.conkey = ARRAY[(SELECT attnum FROM pg_catalog.pg_attribute
                                    WHERE attrelid = p_table AND attname = a.attname)]
            LIMIT 1;
            v_value := CASE WHEN v_literal IS NOT NULL THEN to_jsonb(replace(v_literal, '''''', ''''))
                            WHEN a.typname = 'uuid' THEN to_jsonb(gen_random_uuid()::text)
                            WHEN a.typname IN ('json', 'jsonb') THEN '{}'::jsonb
                            WHEN a.typcategory = 'A' THEN to_jsonb('{}'::text)
                            WHEN a.typcategory = 'N' THEN to_jsonb(0)
                            WHEN a.typcategory = 'B' THEN to_jsonb(false)
                            WHEN a.typcategory = 'D' THEN to_jsonb(now()::text)
                            ELSE to_jsonb('mt test'::text) END;
        ELSE
            CONTINUE;
        END IF;
        vals := vals || jsonb_build_object(a.attname, v_value);
        v_cols := v_cols || quote_ident(a.attname);
    END LOOP;
    stmt := format('INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $1) RETURNING id',
                   p_table, array_to_string(v_cols, ', '), array_to_string(v_cols, ', '), p_table);
END
$$;

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
        -- Personal organizations are the users' own: id = the owner's user id.
        SELECT count(*) INTO v_n FROM public.organizations o
        WHERE o.is_default AND o.created_by IS NOT NULL AND o.created_by <> o.id;
        IF v_n <> 0 THEN
            v_fail := v_fail || format('%s personal organizations are not their owner''s (id <> created_by)', v_n);
        END IF;
        IF public.unassigned_organization_id() IS NULL THEN
            v_fail := v_fail || 'the unassigned legacy rows organization is missing'::text;
        END IF;
        -- Sign-ups get their organization from tables the migration owns, never from a trigger on auth.users
        -- (on Supabase it belongs to supabase_auth_admin: the rollback could not drop it).
        FOR t IN SELECT tg.tgname FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
                 WHERE tg.tgrelid = 'auth.users'::regclass AND NOT tg.tgisinternal
                   AND p.proname IN ('handle_new_user_organization', 'handle_new_profile_organization',
                                     'ensure_personal_organization', 'set_organization_id_from_user')
        LOOP
            v_fail := v_fail || format('trigger %s on auth.users (the rollback cannot drop it on Supabase)', t);
        END LOOP;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
                       WHERE tg.tgrelid = 'public.profiles'::regclass AND NOT tg.tgisinternal
                         AND p.proname = 'handle_new_profile_organization' AND tg.tgenabled <> 'D') THEN
            v_fail := v_fail || 'profiles: no trigger giving new sign-ups a personal organization'::text;
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
        RAISE NOTICE 'Schema: PASS tables, columns, constraints, triggers, personal organizations, views, grants';
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
    t text;
    c text;
    v_n bigint;
    v_m bigint;
    v_user_a uuid := gen_random_uuid();
    v_user_b uuid := gen_random_uuid();
    v_user_c uuid := gen_random_uuid();
    v_rep_a uuid;
    v_rep_b uuid;
    v_rep_c uuid;
    v_job_a uuid;
    v_job_b uuid;
    v_shared uuid;
    v_tables text[];
    v_errored boolean;
    v_stmt text;
    v_vals jsonb;
    v_intrusion text;
    v_intrusion_vals jsonb;
    v_allowed boolean;
    v_has boolean;
    v_can_insert boolean;
BEGIN
    BEGIN
        -- Catalog checks. A command has an organization policy exactly where a pre-migration policy let
        -- authenticated do it (saved by 0002): nobody gains a power the migration was not asked to give.
        IF to_regclass('public.multi_tenant_saved_objects') IS NULL THEN
            v_fail := v_fail || 'public.multi_tenant_saved_objects is missing (0002 not applied)'::text;
        END IF;
        FOREACH t IN ARRAY ARRAY['profiles', 'audit_reports', 'automation_jobs', 'generated_automations', 'waitlist',
                                 'organizations', 'organization_memberships'] LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            v_tables := v_tables || t;
            IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = format('public.%I', t)::regclass) THEN
                v_fail := v_fail || format('RLS is not enabled on %s', t);
            END IF;
            FOREACH c IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] LOOP
                v_has := EXISTS (SELECT 1 FROM pg_policies
                                 WHERE schemaname = 'public' AND tablename = t AND cmd IN (c, 'ALL')
                                   AND 'authenticated' = ANY (roles));
                IF t IN ('organizations', 'organization_memberships') THEN
                    CONTINUE WHEN t = 'organizations' AND c = 'INSERT';  -- created via create_organization()
                    IF NOT v_has THEN
                        v_fail := v_fail || format('%s has no %s policy for authenticated', t, c);
                    END IF;
                    CONTINUE;
                END IF;
                CONTINUE WHEN to_regclass('public.multi_tenant_saved_objects') IS NULL;
                EXECUTE 'SELECT EXISTS (SELECT 1 FROM public.multi_tenant_saved_objects s
                                        WHERE s.kind = ''policy'' AND s.table_name = $1
                                          AND s.original ->> ''permissive'' = ''PERMISSIVE''
                                          AND s.original ->> ''cmd'' IN ($2, ''ALL'')
                                          AND (s.original -> ''roles'') ?| ARRAY[''authenticated'', ''public''])'
                    INTO v_allowed USING t, c;
                IF v_allowed AND NOT v_has THEN
                    v_fail := v_fail || format('%s: users could %s their rows before, no policy lets them now', t, c);
                ELSIF v_has AND NOT v_allowed THEN
                    v_fail := v_fail || format('%s: a %s policy for authenticated, where nobody could before', t, c);
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
        v_can_insert := EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'audit_reports'
                                  AND cmd IN ('INSERT', 'ALL') AND 'authenticated' = ANY (roles));

        -- Impersonation, on test data that is rolled back at the end of this block. Test rows are copies of
        -- existing rows with only their keys changed, so they satisfy this installation's constraints.
        BEGIN
            -- Three sign-ups through the old code path: users, then (A and B) their profiles.
            FOR v_n IN 1..3 LOOP
                SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('auth.users',
                    jsonb_build_object('id', (ARRAY[v_user_a, v_user_b, v_user_c])[v_n],
                                       'email', format('mt-test-%s-%s@example.test', v_n, gen_random_uuid())));
                EXECUTE v_stmt USING v_vals;
            END LOOP;
            FOREACH t IN ARRAY ARRAY[v_user_a::text, v_user_b::text] LOOP
                -- An installation whose auth.users trigger creates profiles has made them already.
                CONTINUE WHEN EXISTS (SELECT 1 FROM public.profiles p WHERE p.id = t::uuid);
                SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('public.profiles',
                    jsonb_build_object('id', t, 'organization_id', NULL));
                EXECUTE v_stmt USING v_vals;
            END LOOP;
            SELECT count(*) INTO v_n FROM public.organizations o
            JOIN public.organization_memberships m ON m.organization_id = o.id AND m.user_id = o.id
            WHERE o.id IN (v_user_a, v_user_b) AND o.is_default AND m.role = 'admin' AND m.status = 'active';
            IF v_n <> 2 THEN
                v_fail := v_fail || 'a new sign-up (user, then profile) did not get a personal organization'::text;
            END IF;
            SELECT count(*) INTO v_n FROM public.profiles WHERE id IN (v_user_a, v_user_b) AND organization_id = id;
            IF v_n <> 2 THEN
                v_fail := v_fail || 'a new sign-up''s profile is not in their personal organization'::text;
            END IF;

            -- Rows written by single-tenant code (no organization_id) for A and B.
            SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('public.audit_reports',
                jsonb_build_object('user_id', v_user_a, 'organization_id', NULL));
            EXECUTE v_stmt INTO v_rep_a USING v_vals;
            SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('public.audit_reports',
                jsonb_build_object('user_id', v_user_b, 'organization_id', NULL));
            EXECUTE v_stmt INTO v_rep_b USING v_vals;
            SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('public.automation_jobs',
                jsonb_build_object('user_id', v_user_a, 'audit_report_id', v_rep_a, 'organization_id', NULL));
            EXECUTE v_stmt INTO v_job_a USING v_vals;
            SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('public.automation_jobs',
                jsonb_build_object('user_id', v_user_b, 'audit_report_id', v_rep_b, 'organization_id', NULL));
            EXECUTE v_stmt INTO v_job_b USING v_vals;
            FOREACH t IN ARRAY ARRAY[v_job_a::text, v_job_b::text] LOOP
                SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('public.generated_automations',
                    jsonb_build_object('job_id', t, 'organization_id', NULL));
                EXECUTE v_stmt USING v_vals;
            END LOOP;
            SELECT count(*) INTO v_n FROM public.audit_reports WHERE id IN (v_rep_a, v_rep_b) AND organization_id = user_id;
            SELECT count(*) INTO v_m FROM public.generated_automations g JOIN public.automation_jobs j ON j.id = g.job_id
            WHERE j.id IN (v_job_a, v_job_b) AND g.organization_id = j.user_id AND j.organization_id = j.user_id;
            IF v_n <> 2 OR v_m <> 2 THEN
                v_fail := v_fail || 'single-tenant writes did not land in their user''s personal organization'::text;
            END IF;

            SELECT * INTO v_intrusion, v_intrusion_vals FROM pg_temp.mt_test_row('public.audit_reports',
                jsonb_build_object('user_id', v_user_a, 'organization_id', v_user_b));

            -- ---- as user A ----
            SET LOCAL ROLE authenticated;
            PERFORM set_config('request.jwt.claims',
                               json_build_object('sub', v_user_a, 'role', 'authenticated')::text, true);
            PERFORM set_config('request.jwt.claim.sub', v_user_a::text, true);
            FOREACH t IN ARRAY v_tables LOOP
                EXECUTE format('SELECT count(*) FILTER (WHERE %s IS DISTINCT FROM $1), count(*) FROM public.%I',
                               CASE t WHEN 'organizations' THEN 'id' ELSE 'organization_id' END, t)
                    INTO v_n, v_m USING v_user_a;
                IF v_n <> 0 THEN
                    v_fail := v_fail || format('user A sees %s rows of other organizations in %s', v_n, t);
                END IF;
                IF v_m = 0 AND t NOT IN ('waitlist') THEN
                    v_fail := v_fail || format('user A sees none of their own rows in %s', t);
                END IF;
            END LOOP;
            SELECT count(*) INTO v_n FROM public.audit_reports WHERE id = v_rep_b;
            SELECT count(*) INTO v_m FROM public.organizations WHERE id = v_user_b;
            IF v_n + v_m <> 0 THEN
                v_fail := v_fail || 'user A can read B''s report or B''s personal organization'::text;
            END IF;
            v_errored := false;
            BEGIN
                EXECUTE v_intrusion USING v_intrusion_vals;
            EXCEPTION WHEN insufficient_privilege THEN
                v_errored := true;
            END;
            IF NOT v_errored THEN
                v_fail := v_fail || 'user A could insert a report into B''s personal organization'::text;
            END IF;
            UPDATE public.audit_reports SET user_id = user_id WHERE id = v_rep_b;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            DELETE FROM public.automation_jobs WHERE id = v_job_b;
            GET DIAGNOSTICS v_m = ROW_COUNT;
            IF v_n + v_m <> 0 THEN
                v_fail := v_fail || 'user A could update or delete B''s rows'::text;
            END IF;
            UPDATE public.organizations SET name = name WHERE id = v_user_b;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            IF v_n <> 0 THEN
                v_fail := v_fail || 'user A could update B''s personal organization'::text;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'audit_reports'
                         AND cmd IN ('UPDATE', 'ALL') AND 'authenticated' = ANY (roles)) THEN
                v_errored := false;
                BEGIN
                    UPDATE public.audit_reports SET organization_id = v_user_b WHERE id = v_rep_a;
                EXCEPTION WHEN insufficient_privilege THEN
                    v_errored := true;
                END;
                IF NOT v_errored THEN
                    v_fail := v_fail || 'user A could move a report into B''s personal organization'::text;
                END IF;
            END IF;
            v_errored := false;
            BEGIN
                INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
                VALUES (v_user_b, v_user_a, 'admin', 'active');
            EXCEPTION WHEN insufficient_privilege THEN
                v_errored := true;
            END;
            IF NOT v_errored THEN
                v_fail := v_fail || 'user A could add themselves to B''s personal organization'::text;
            END IF;
            -- Sharing is an explicit act: A creates an organization and invites B as a member.
            v_shared := public.create_organization('Validation shared', 'mt-test-' || left(md5(v_user_a::text), 12));
            INSERT INTO public.organization_memberships (organization_id, user_id, role, status, invited_by)
            VALUES (v_shared, v_user_b, 'member', 'active', v_user_a);

            -- ---- as user B (member of A's shared organization, admin of their own) ----
            PERFORM set_config('request.jwt.claims',
                               json_build_object('sub', v_user_b, 'role', 'authenticated')::text, true);
            PERFORM set_config('request.jwt.claim.sub', v_user_b::text, true);
            SELECT count(*) INTO v_n FROM public.audit_reports;
            SELECT count(*) INTO v_m FROM public.audit_reports WHERE id = v_rep_b;
            IF v_n <> 1 OR v_m <> 1 THEN
                v_fail := v_fail || format('user B sees %s reports (expected exactly their own 1)', v_n);
            END IF;
            UPDATE public.organization_memberships SET role = 'admin' WHERE user_id = v_user_b
                AND organization_id = v_shared;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            IF v_n <> 0 THEN
                v_fail := v_fail || 'user B could raise their own role'::text;
            END IF;
            v_errored := false;
            BEGIN
                INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
                VALUES (v_user_a, v_user_b, 'member', 'active');
            EXCEPTION WHEN insufficient_privilege THEN
                v_errored := true;
            END;
            IF NOT v_errored THEN
                v_fail := v_fail || 'user B could add themselves to A''s personal organization'::text;
            END IF;
            SELECT count(*) INTO v_n FROM public.organizations WHERE id = v_user_a;
            IF v_n <> 0 THEN
                v_fail := v_fail || 'user B can see A''s personal organization'::text;
            END IF;

            -- ---- as user C: signed up, no profile, writes a report through the old code path ----
            IF v_can_insert THEN
                PERFORM set_config('request.jwt.claims',
                                   json_build_object('sub', v_user_c, 'role', 'authenticated')::text, true);
                PERFORM set_config('request.jwt.claim.sub', v_user_c::text, true);
                RESET ROLE;
                -- As on an installation without a profile-on-signup trigger: no profile, no organization yet.
                DELETE FROM public.profiles WHERE id = v_user_c;
                DELETE FROM public.organizations WHERE id = v_user_c;
                SELECT * INTO v_stmt, v_vals FROM pg_temp.mt_test_row('public.audit_reports',
                    jsonb_build_object('user_id', v_user_c, 'organization_id', NULL));
                SET LOCAL ROLE authenticated;
                BEGIN
                    EXECUTE v_stmt INTO v_rep_c USING v_vals;
                    SELECT count(*) INTO v_n FROM public.audit_reports WHERE id = v_rep_c AND organization_id = v_user_c;
                    IF v_n <> 1 THEN
                        v_fail := v_fail || 'a report written by a new user without profile is not visible to them'::text;
                    END IF;
                EXCEPTION WHEN insufficient_privilege THEN
                    v_fail := v_fail || ('a new user without profile cannot write a report: ' || SQLERRM);
                END;
            END IF;

            -- ---- anon sees nothing ----
            RESET ROLE;
            SET LOCAL ROLE anon;
            PERFORM set_config('request.jwt.claims', json_build_object('role', 'anon')::text, true);
            PERFORM set_config('request.jwt.claim.sub', '00000000-0000-0000-0000-000000000000', true);  -- nobody
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
            PERFORM set_config('request.jwt.claim.sub', '00000000-0000-0000-0000-000000000000', true);  -- nobody
            SELECT count(*) INTO v_n FROM public.audit_reports WHERE id IN (v_rep_a, v_rep_b);
            IF v_n <> 2 THEN
                v_fail := v_fail || 'service_role does not see the reports of both users'::text;
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
        RAISE NOTICE 'RLS Policies: PASS RLS enabled, policies per command as before, each user alone with their rows';
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
    v_unassigned uuid;
BEGIN
    BEGIN
        v_unassigned := public.unassigned_organization_id();
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
            SELECT count(*) INTO v_n FROM public.migration_progress
            WHERE table_name = t AND status = 'done' AND rows_done = rows_total;
            IF v_n <> 1 THEN
                v_fail := v_fail || format('migration_progress does not show %s as done (rows_done = rows_total)', t);
            END IF;
            -- A row with a user is in an organization that user is an active member of (their personal one
            -- right after the migration): nobody else can reach it, and its owner still can.
            CONTINUE WHEN t = 'generated_automations';
            CONTINUE WHEN t <> 'profiles' AND NOT EXISTS (
                SELECT 1 FROM pg_attribute WHERE attrelid = format('public.%I', t)::regclass AND attname = 'user_id'
                  AND NOT attisdropped);
            EXECUTE format('SELECT count(*) FROM public.%I x WHERE x.%I IS NOT NULL AND NOT EXISTS ('
                           'SELECT 1 FROM public.organization_memberships m WHERE m.user_id = x.%I '
                           'AND m.organization_id = x.organization_id AND m.status = ''active'')',
                           t, CASE t WHEN 'profiles' THEN 'id' ELSE 'user_id' END,
                           CASE t WHEN 'profiles' THEN 'id' ELSE 'user_id' END) INTO v_n;
            IF v_n <> 0 THEN
                v_fail := v_fail || format('%s rows of %s are in an organization their user is not an active member of',
                                           v_n, t);
            END IF;
        END LOOP;
        SELECT count(*) INTO v_n FROM public.migration_progress
        WHERE table_name = 'organization_memberships' AND status = 'done' AND rows_done = rows_total;
        IF v_n <> 1 THEN
            v_fail := v_fail || 'migration_progress does not show organization_memberships as done'::text;
        END IF;
        SELECT count(*) INTO v_n FROM auth.users u
        WHERE NOT EXISTS (SELECT 1 FROM public.organization_memberships m JOIN public.organizations o
                            ON o.id = m.organization_id AND o.is_default
                          WHERE m.user_id = u.id AND m.organization_id = u.id AND m.status = 'active'
                            AND m.role = 'admin');
        IF v_n <> 0 THEN
            v_fail := v_fail || format('%s users are not the active admin of a personal organization', v_n);
        END IF;
        SELECT count(*) INTO v_n FROM public.organization_memberships WHERE organization_id = v_unassigned;
        IF v_n <> 0 THEN
            v_fail := v_fail || format('the unassigned legacy rows organization has %s members', v_n);
        END IF;
        SELECT count(*) INTO v_n FROM public.generated_automations g
        JOIN public.automation_jobs j ON j.id = g.job_id WHERE g.organization_id <> j.organization_id;
        IF v_n <> 0 THEN
            v_fail := v_fail || format('%s generated automations are not in their job''s organization', v_n);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        v_fail := v_fail || ('unexpected error: ' || SQLERRM);
    END;
    FOREACH c IN ARRAY v_fail LOOP
        RAISE NOTICE 'Data Migration: FAIL %', c;
    END LOOP;
    IF cardinality(v_fail) = 0 THEN
        RAISE NOTICE 'Data Migration: PASS every row has an organization its user belongs to, every user a personal one';
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
                ('public.default_organization_id(uuid)', false),
                ('public.unassigned_organization_id()', false),
                ('public.ensure_personal_organization(uuid)', true),
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
        IF v_user IS NOT NULL AND public.default_organization_id(v_user) IS DISTINCT FROM v_user THEN
            v_fail := v_fail || 'default_organization_id(user) is not the user''s personal organization'::text;
        END IF;
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
                -- automation_type as this installation stores it (a copy of an existing job's, if any).
                BEGIN
                    v_job := public.create_organization_automation_job(
                        v_user, v_org, (SELECT to_jsonb(j) ->> 'automation_type' FROM public.automation_jobs j LIMIT 1),
                        NULL, '{"test": true}');
                EXCEPTION WHEN not_null_violation OR check_violation THEN
                    -- The installation requires job columns Workers fill in themselves: only access is checked.
                    RAISE NOTICE 'Functions: PASS create_organization_automation_job reached the insert (%)', SQLERRM;
                    v_job := NULL;
                END;
                SELECT count(*) INTO v_n FROM public.get_organization_automation_jobs(v_org, 'pending', 1000) j
                WHERE j.id = v_job AND j.job ->> 'id' = v_job::text;
                IF v_job IS NOT NULL AND v_n <> 1 THEN
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
                PERFORM set_config('request.jwt.claim.sub', v_user::text, true);
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
            -- A small table is rightly read sequentially: the plan is judged from 10,000 reports on.
            IF v_share < 0.05 AND v_plan NOT LIKE '%Index%'
               AND (SELECT reltuples FROM pg_class WHERE oid = 'public.audit_reports'::regclass) >= 10000 THEN
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

DROP FUNCTION IF EXISTS pg_temp.mt_test_row(regclass, jsonb);

RESET lock_timeout;
RESET statement_timeout;
