"""The lock estimate reads the parse tree, DO blocks' literal SQL included (no database)."""

from controlpanel.safety.locks import estimate_script
from controlpanel.targets.sqlscript import parse_script


def locks(sql):
    return [(lock["table"], lock["mode"], lock["why"], lock["rule"]) for entry in estimate_script(parse_script(sql))
            for lock in entry["locks"]]


def test_a_volatile_default_is_a_rewrite_and_a_constant_one_is_not():
    (table, mode, why, rule), = locks("ALTER TABLE public.audit_reports ADD COLUMN m timestamptz "
                                      "DEFAULT clock_timestamp();")
    assert (table, mode, rule) == ("public.audit_reports", "ACCESS EXCLUSIVE", "adding-field-with-default")
    assert "rewrites the table" in why
    assert locks("ALTER TABLE public.audit_reports ADD COLUMN n int DEFAULT 0;")[0][3] == ""


def test_literal_sql_inside_a_do_block_is_estimated_and_computed_sql_is_a_note():
    sql = ("DO $$ BEGIN\n EXECUTE 'CREATE INDEX i ON public.automation_jobs (status)';\n"
           " ALTER TABLE public.profiles ADD CONSTRAINT fk FOREIGN KEY (id) REFERENCES auth.users (id);\n"
           " EXECUTE format('ALTER TABLE %I ADD x int', 'profiles');\nEND $$;")
    found = locks(sql)
    assert ("public.automation_jobs", "SHARE", "CREATE INDEX (blocks writers for the build) (inside DO block, line 2)",
            "require-concurrent-index-creation") in found
    assert any(t == "public.profiles" and r == "adding-foreign-key-constraint" for t, _, _, r in found)
    assert "1 statement(s) built at run time" in estimate_script(parse_script(sql))[0]["note"]


def test_not_valid_and_concurrent_forms_break_no_rule():
    found = locks("ALTER TABLE public.profiles ADD CONSTRAINT fk FOREIGN KEY (id) REFERENCES auth.users (id) NOT VALID;"
                  "CREATE INDEX CONCURRENTLY j ON public.audit_reports (title);")
    assert [r for *_, r in found] == ["", "", ""]


def test_a_temp_table_is_named_as_such():
    (table, _, why, _), = locks("CREATE TEMP TABLE migration_progress (t text);")
    assert table == "pg_temp.migration_progress" and "only in this session" in why
