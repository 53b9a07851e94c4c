-- The single-tenant ProcessAudit schema as it stands before the migration (owner-based RLS).
-- Safe to run more than once on a database that has not been migrated.

CREATE OR REPLACE FUNCTION public.handle_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END
$$;

CREATE TABLE IF NOT EXISTS public.profiles (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    full_name text,
    company text,
    role text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.audit_reports (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    title text NOT NULL DEFAULT 'Untitled audit',
    process_description text NOT NULL,
    file_content text,
    answers jsonb NOT NULL DEFAULT '{}'::jsonb,
    report_data jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_favorite boolean NOT NULL DEFAULT false,
    tags text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_audit_reports_user_id ON public.audit_reports (user_id);
CREATE INDEX IF NOT EXISTS idx_audit_reports_created_at ON public.audit_reports (created_at DESC);

CREATE TABLE IF NOT EXISTS public.automation_jobs (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    audit_report_id uuid REFERENCES public.audit_reports (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'queued', 'processing', 'completed', 'failed')),
    progress integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    automation_type text NOT NULL DEFAULT 'n8n' CHECK (automation_type IN ('n8n', 'zapier', 'make')),
    workflow_data jsonb,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_automation_jobs_user_id ON public.automation_jobs (user_id);
CREATE INDEX IF NOT EXISTS idx_automation_jobs_audit_report_id ON public.automation_jobs (audit_report_id);
CREATE INDEX IF NOT EXISTS idx_automation_jobs_status ON public.automation_jobs (status);

CREATE TABLE IF NOT EXISTS public.generated_automations (
    id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    job_id uuid NOT NULL REFERENCES public.automation_jobs (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    platform text NOT NULL DEFAULT 'n8n',
    workflow_json jsonb NOT NULL DEFAULT '{}'::jsonb,
    instructions text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_generated_automations_job_id ON public.generated_automations (job_id);

CREATE OR REPLACE TRIGGER set_profiles_updated_at BEFORE UPDATE ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.handle_updated_at();
CREATE OR REPLACE TRIGGER set_audit_reports_updated_at BEFORE UPDATE ON public.audit_reports
    FOR EACH ROW EXECUTE FUNCTION public.handle_updated_at();
CREATE OR REPLACE TRIGGER set_automation_jobs_updated_at BEFORE UPDATE ON public.automation_jobs
    FOR EACH ROW EXECUTE FUNCTION public.handle_updated_at();

-- Supabase's usual profile-on-signup trigger.
CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  INSERT INTO public.profiles (id, full_name)
  VALUES (NEW.id, NEW.raw_user_meta_data ->> 'full_name')
  ON CONFLICT (id) DO NOTHING;
  RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

-- Owner-based policies, named the way the ProcessAudit team named them.
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.automation_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.generated_automations ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS "Users can view own profile" ON public.profiles;
CREATE POLICY "Users can view own profile" ON public.profiles FOR SELECT USING (auth.uid() = id);
DROP POLICY IF EXISTS "Users can update own profile" ON public.profiles;
CREATE POLICY "Users can update own profile" ON public.profiles FOR UPDATE USING (auth.uid() = id);
DROP POLICY IF EXISTS "Users can insert own profile" ON public.profiles;
CREATE POLICY "Users can insert own profile" ON public.profiles FOR INSERT WITH CHECK (auth.uid() = id);

DROP POLICY IF EXISTS "Users can view own reports" ON public.audit_reports;
CREATE POLICY "Users can view own reports" ON public.audit_reports FOR SELECT USING (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users can create own reports" ON public.audit_reports;
CREATE POLICY "Users can create own reports" ON public.audit_reports FOR INSERT WITH CHECK (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users can update own reports" ON public.audit_reports;
CREATE POLICY "Users can update own reports" ON public.audit_reports FOR UPDATE USING (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users can delete own reports" ON public.audit_reports;
CREATE POLICY "Users can delete own reports" ON public.audit_reports FOR DELETE USING (auth.uid() = user_id);

DROP POLICY IF EXISTS "Users can view own jobs" ON public.automation_jobs;
CREATE POLICY "Users can view own jobs" ON public.automation_jobs FOR SELECT USING (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users can create own jobs" ON public.automation_jobs;
CREATE POLICY "Users can create own jobs" ON public.automation_jobs FOR INSERT WITH CHECK (auth.uid() = user_id);
DROP POLICY IF EXISTS "Users can update own jobs" ON public.automation_jobs;
CREATE POLICY "Users can update own jobs" ON public.automation_jobs FOR UPDATE USING (auth.uid() = user_id);
DROP POLICY IF EXISTS "Service role can manage all jobs" ON public.automation_jobs;
CREATE POLICY "Service role can manage all jobs" ON public.automation_jobs FOR ALL TO service_role
    USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS "Users can view own automations" ON public.generated_automations;
CREATE POLICY "Users can view own automations" ON public.generated_automations FOR SELECT USING (
    EXISTS (SELECT 1 FROM public.automation_jobs j WHERE j.id = job_id AND j.user_id = auth.uid()));
DROP POLICY IF EXISTS "Service role can manage automations" ON public.generated_automations;
CREATE POLICY "Service role can manage automations" ON public.generated_automations FOR ALL TO service_role
    USING (true) WITH CHECK (true);

-- ProcessAudit's per-user dashboard view.
CREATE OR REPLACE VIEW public.audit_stats AS
SELECT r.user_id,
       count(*) AS total_reports,
       count(*) FILTER (WHERE r.is_favorite) AS favorite_reports,
       max(r.created_at) AS last_report_at
FROM public.audit_reports r
GROUP BY r.user_id;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO authenticated, service_role;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon;
