-- The `minimal` zoo shape: only what DESIGN.md's contract promises, instead of 01 + 02.
-- No optional columns, no waitlist, owner policies under other names than ProcessAudit's.
-- Applied after 00_supabase_standin.sql; safe to run more than once on an unmigrated database.

CREATE OR REPLACE FUNCTION public.handle_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END
$$;

CREATE TABLE IF NOT EXISTS public.profiles (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS public.audit_reports (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.automation_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    audit_report_id uuid REFERENCES public.audit_reports (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'pending',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.generated_automations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id uuid NOT NULL REFERENCES public.automation_jobs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.automation_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.generated_automations ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS profiles_owner_all ON public.profiles;
CREATE POLICY profiles_owner_all ON public.profiles FOR ALL USING (auth.uid() = id) WITH CHECK (auth.uid() = id);

DROP POLICY IF EXISTS "reports: owner reads" ON public.audit_reports;
CREATE POLICY "reports: owner reads" ON public.audit_reports FOR SELECT USING (auth.uid() = user_id);
DROP POLICY IF EXISTS "reports: owner writes" ON public.audit_reports;
CREATE POLICY "reports: owner writes" ON public.audit_reports FOR ALL USING (auth.uid() = user_id)
    WITH CHECK (auth.uid() = user_id);

DROP POLICY IF EXISTS jobs_select_mine ON public.automation_jobs;
CREATE POLICY jobs_select_mine ON public.automation_jobs FOR SELECT TO authenticated USING (user_id = auth.uid());
DROP POLICY IF EXISTS jobs_insert_mine ON public.automation_jobs;
CREATE POLICY jobs_insert_mine ON public.automation_jobs FOR INSERT TO authenticated WITH CHECK (user_id = auth.uid());
DROP POLICY IF EXISTS jobs_service ON public.automation_jobs;
CREATE POLICY jobs_service ON public.automation_jobs FOR ALL TO service_role USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS automations_select_mine ON public.generated_automations;
CREATE POLICY automations_select_mine ON public.generated_automations FOR SELECT TO authenticated USING (
    job_id IN (SELECT j.id FROM public.automation_jobs j WHERE j.user_id = auth.uid()));
DROP POLICY IF EXISTS automations_service ON public.generated_automations;
CREATE POLICY automations_service ON public.generated_automations FOR ALL TO service_role
    USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO authenticated, service_role;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon;
