"""What a bundle creates and references, from the parse tree (no database)."""

from controlpanel.safety.bundle_reader import analyse
from controlpanel.targets.sqlscript import parse_script


def refs(*texts):
    return analyse([parse_script(t, name=f"f{i}.sql") for i, t in enumerate(texts, 1)])


def test_a_relation_created_earlier_is_not_a_reference_but_one_created_later_is():
    a = refs("CREATE TABLE public.orgs (id int);\nINSERT INTO public.orgs SELECT 1 FROM public.audit_reprots;",
             "UPDATE public.later SET x = 1;\nCREATE TABLE public.later (x int);")
    assert [(r.display, r.file, r.line) for r in a.references] == [("public.audit_reprots", "f1.sql", 2),
                                                                    ("public.later", "f2.sql", 1)]


def test_ctes_and_guarded_do_blocks_are_not_references():
    a = refs("WITH c AS (SELECT 1) SELECT * FROM c;\n"
             "DO $$ BEGIN IF to_regclass('public.waitlist') IS NOT NULL THEN "
             "ALTER TABLE public.waitlist ADD COLUMN x int; END IF; END $$;")
    assert a.references == []


def test_literal_sql_inside_a_do_block_is_read():
    a = refs("DO $$ BEGIN EXECUTE 'UPDATE public.nowhere SET x = 1'; END $$;")
    assert [r.display for r in a.references] == ["public.nowhere"]


def test_unguarded_policy_and_trigger_and_temp_tables():
    a = refs("DROP POLICY IF EXISTS p ON public.t;\nCREATE POLICY p ON public.t USING (true);\n"
             "CREATE POLICY q ON public.t USING (true);\n"
             "CREATE TRIGGER tg AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();\n"
             "CREATE OR REPLACE TRIGGER tg2 AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();\n"
             "CREATE TEMP TABLE migration_progress (t text);")
    assert [u.what for u in a.unguarded] == ["CREATE POLICY q ON public.t", "CREATE TRIGGER tg ON public.t"]
    assert [t.what for t in a.temp_tables] == ["TEMP table migration_progress"]
    assert ("public.t", "q") in a.created_policies


def test_sequences_views_and_tables_as_select_are_created_relations():
    a = refs("CREATE SEQUENCE public.invoice_numbers;\nCREATE VIEW public.v AS SELECT 1 AS one;\n"
             "CREATE TABLE public.copy AS SELECT 1 AS one;\n"
             "SELECT last_value FROM public.invoice_numbers, public.v, public.copy;")
    assert a.references == []
    assert {("public", "invoice_numbers"), ("public", "v"), ("public", "copy")} <= a.created_relations
