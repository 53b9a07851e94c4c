-- The `strict` zoo shape, applied over `baseline` or `minimal`: what stricter installations do.
-- Optional columns NOT NULL without a default, CHECK enumerations, timestamps defaulting to
-- timezone('utc', now()), an extra view over a tenant table, and a profile-on-signup trigger on auth.users
-- that fills the NOT NULL profile columns. Only columns that exist are touched, so it composes with any schema.

CREATE FUNCTION pg_temp.has_column(tbl text, col text) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('public.' || tbl) AND attname = col
                 AND attnum > 0 AND NOT attisdropped)
$$;

DO $$
DECLARE
  item text[];
BEGIN
  -- NOT NULL without a default: an insert must name these columns.
  FOREACH item SLICE 1 IN ARRAY ARRAY[
      ['profiles', 'full_name'],
      ['audit_reports', 'title'], ['audit_reports', 'process_description'], ['audit_reports', 'answers'],
      ['audit_reports', 'report_data'],
      ['automation_jobs', 'progress'], ['automation_jobs', 'automation_type'], ['automation_jobs', 'workflow_data'],
      ['generated_automations', 'name'], ['generated_automations', 'platform'],
      ['generated_automations', 'workflow_json'], ['generated_automations', 'instructions']] LOOP
    IF pg_temp.has_column(item[1], item[2]) THEN
      EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I DROP DEFAULT, ALTER COLUMN %I SET NOT NULL',
                     item[1], item[2], item[2]);
    END IF;
  END LOOP;
  -- Timestamps as Supabase's table editor writes them.
  FOREACH item SLICE 1 IN ARRAY ARRAY[
      ['profiles', 'created_at'], ['profiles', 'updated_at'], ['audit_reports', 'created_at'],
      ['audit_reports', 'updated_at'], ['automation_jobs', 'created_at'], ['automation_jobs', 'updated_at'],
      ['generated_automations', 'created_at']] LOOP
    IF pg_temp.has_column(item[1], item[2]) THEN
      EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I SET DEFAULT timezone(''utc'', now())', item[1], item[2]);
    END IF;
  END LOOP;
  -- CHECK enumerations, under this installation's own names.
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'automation_jobs_status_valid') THEN
    ALTER TABLE public.automation_jobs ADD CONSTRAINT automation_jobs_status_valid
        CHECK (status IN ('pending', 'queued', 'processing', 'completed', 'failed'));
  END IF;
  IF pg_temp.has_column('automation_jobs', 'automation_type')
     AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'automation_jobs_type_valid') THEN
    ALTER TABLE public.automation_jobs ADD CONSTRAINT automation_jobs_type_valid
        CHECK (automation_type IN ('n8n', 'zapier', 'make'));
  END IF;
  IF pg_temp.has_column('generated_automations', 'platform')
     AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'generated_automations_platform_valid') THEN
    ALTER TABLE public.generated_automations ADD CONSTRAINT generated_automations_platform_valid
        CHECK (platform IN ('n8n', 'zapier', 'make'));
  END IF;
  IF pg_temp.has_column('profiles', 'role')
     AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'profiles_role_valid') THEN
    ALTER TABLE public.profiles ADD CONSTRAINT profiles_role_valid
        CHECK (role IN ('owner', 'analyst', 'ops lead', 'cfo', 'engineer'));
  END IF;
END
$$;

-- An extra view over a tenant table (runs with its owner's rights, as Supabase views do by default).
CREATE OR REPLACE VIEW public.job_status_summary AS
SELECT j.user_id, j.status, count(*) AS jobs, max(j.created_at) AS last_job_at
FROM public.automation_jobs j
GROUP BY j.user_id, j.status;
GRANT SELECT ON public.job_status_summary TO authenticated, service_role;

-- Profile on signup, filling the NOT NULL columns this installation has (replaces baseline's trigger).
DROP TRIGGER IF EXISTS on_auth_user_created ON auth.users;
DROP FUNCTION IF EXISTS public.handle_new_user();
DO $$
BEGIN
  IF pg_temp.has_column('profiles', 'full_name') THEN
    CREATE OR REPLACE FUNCTION public.create_profile_for_new_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $fn$
    BEGIN
      INSERT INTO public.profiles (id, full_name)
      VALUES (NEW.id, coalesce(NEW.raw_user_meta_data ->> 'full_name', split_part(NEW.email, '@', 1), ''))
      ON CONFLICT (id) DO NOTHING;
      RETURN NEW;
    END
    $fn$;
  ELSE
    CREATE OR REPLACE FUNCTION public.create_profile_for_new_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $fn$
    BEGIN
      INSERT INTO public.profiles (id) VALUES (NEW.id) ON CONFLICT (id) DO NOTHING;
      RETURN NEW;
    END
    $fn$;
  END IF;
END
$$;
CREATE OR REPLACE TRIGGER create_profile_after_signup AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.create_profile_for_new_user();
