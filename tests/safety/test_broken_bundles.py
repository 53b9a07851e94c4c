"""The library of broken bundles, each caught at its own stage with the object named (and the good bundle not)."""

import psycopg
import pytest

from controlpanel.evidence.functions import check_functions
from controlpanel.evidence.rls_audit import BLOCKING, audit_rls, new_findings
from controlpanel.safety.bundle_reader import created_routines
from controlpanel.safety.preflight import run_preflight
from controlpanel.targets.connection import dsn_for
from tests.helpers.targets import forward_files, psql_file

from .broken_bundles import PLPGSQL, POLICIES, PREFLIGHT, SCHEMA, SEVERAL, STATIC, apply


def _migrate_schema_and_policies(target, bundle):
    """0001 and 0002: the files that create functions and policies (the data file adds none)."""
    dsn = dsn_for(target)
    with psycopg.connect(dsn) as conn:
        before = audit_rls(conn)
    for name in (SCHEMA, POLICIES):
        psql_file(dsn, name, bundle)
    with psycopg.connect(dsn) as conn:
        return new_findings(before, audit_rls(conn))


def test_the_projects_bundle_adds_no_blocking_finding(target_factory, bundle_copy):
    new = _migrate_schema_and_policies(target_factory(), bundle_copy)
    assert not [f for f in new if f.severity in BLOCKING], [f.as_dict() for f in new if f.severity in BLOCKING]


@pytest.mark.parametrize("broken", STATIC, ids=lambda b: b.name)
def test_the_static_audit_catches(broken, target_factory, bundle_copy):
    new = _migrate_schema_and_policies(target_factory(), apply(bundle_copy, broken))
    for code, obj in broken.expect:
        assert any(f.code == code and obj in f.object and f.severity in BLOCKING for f in new), (
            broken.name, [(f.code, f.severity, f.object) for f in new])


def _created_functions(bundle):
    return created_routines(bundle)


def test_plpgsql_check_passes_the_projects_functions(target_factory, bundle_copy):
    target = target_factory()
    for name in forward_files():
        psql_file(dsn_for(target), name, bundle_copy)
    with psycopg.connect(dsn_for(target)) as conn:
        findings = check_functions(conn, _created_functions(bundle_copy))
    assert not [f for f in findings if f.severity == "critical"], [f.message for f in findings]


@pytest.mark.parametrize("broken", PLPGSQL, ids=lambda b: b.name)
def test_plpgsql_check_catches(broken, target_factory, bundle_copy):
    apply(bundle_copy, broken)
    target = target_factory()
    psql_file(dsn_for(target), SCHEMA, bundle_copy)
    with psycopg.connect(dsn_for(target)) as conn:
        findings = check_functions(conn, _created_functions(bundle_copy))
    for code, obj in broken.expect:
        hits = [f for f in findings if f.code == code and f.object == obj]
        assert hits and hits[0].severity == "critical", [f.as_dict() for f in findings]
    assert "ambiguous" in hits[0].message


# --- preflight: NO-GO before anything runs, naming file, line and object ---------------------------------

@pytest.fixture
def small_tables(settings):
    """The test template is small (2,000 reports, 60 waitlist rows): judge tables above 100 rows as populated."""
    settings.SAFETY_SMALL_TABLE_ROWS = 100


def _checks(report):
    return {c["key"]: c for c in report["checks"]}


def test_the_projects_bundle_is_go_at_preflight(demo_target, small_tables):
    report = run_preflight(demo_target)
    checks = _checks(report)
    assert report["go"], [c for c in report["checks"] if c["status"] == "no-go"]
    assert checks["bundle.references"]["status"] == "go" and checks["bundle.rerunnable"]["status"] == "go"
    assert checks["bundle.migrated"]["evidence"].startswith("not migrated")
    assert "idx_waitlist_organization_id" not in checks["locks.blocking"]["evidence"]


@pytest.mark.parametrize("broken", PREFLIGHT, ids=lambda b: b.name)
def test_preflight_catches(broken, demo_target, bundle_copy, small_tables):
    report = run_preflight(demo_target, apply(bundle_copy, broken))
    checks = _checks(report)
    assert report["go"] is False
    for key, text in broken.expect:
        assert checks[key]["status"] == "no-go" and text in checks[key]["evidence"], checks[key]
    assert broken.edits[0][0] in " ".join(checks[k]["evidence"] for k, _ in broken.expect)  # the file is named


def test_a_leads_sign_off_of_that_rule_on_that_statement_lifts_the_no_go(demo_target, bundle_copy, small_tables,
                                                                          lead, oncall, client):
    from controlpanel.core.models import AuditEvent
    from controlpanel.safety.models import PreflightReport

    apply(bundle_copy, PREFLIGHT[4])  # non-concurrent CREATE INDEX on audit_reports
    data = run_preflight(demo_target, bundle_copy)
    blocking = _checks(data)["locks.blocking"]["detail"]["blocking"]
    assert [b["rule"] for b in blocking] == ["require-concurrent-index-creation"]
    stored = PreflightReport.objects.create(target=demo_target, go=data["go"], data=data)
    url = f"/safety/preflight/{stored.pk}/"
    client.force_login(oncall)  # on call sees the finding, cannot sign it off
    assert b'data-blocking="require-concurrent-index-creation"' in client.get(url).content
    assert b"Sign off require-concurrent-index-creation" not in client.get(url).content
    assert client.post(f"{url}sign-off/0/", {"reason": "it is fine"}).status_code == 403
    client.force_login(lead)
    assert b"Sign off require-concurrent-index-creation" in client.get(url).content
    client.post(f"{url}sign-off/0/", {"reason": "   "})  # a blank reason is refused
    assert not AuditEvent.objects.filter(action="lint.sign_off").exists()
    client.post(f"{url}sign-off/0/", {"reason": "2,000 rows, window with writers stopped"})
    report = run_preflight(demo_target, bundle_copy)
    assert report["go"] is True and "signed off by lena" in _checks(report)["locks.blocking"]["evidence"]
    assert AuditEvent.objects.filter(action="lint.sign_off").exists()


def test_an_already_migrated_target_is_recognised_and_not_no_go(target_factory, small_tables):
    from .conftest import migrate

    target = target_factory()
    migrate(target)
    report = run_preflight(target)
    migrated = _checks(report)["bundle.migrated"]
    assert migrated["status"] == "warn" and migrated["evidence"].startswith("already migrated")
    assert "forward files will be no-ops" in migrated["evidence"]


def test_several_defects_at_once_are_all_reported(target_factory, bundle_copy, small_tables):
    apply(bundle_copy, SEVERAL)
    target = target_factory()
    checks = _checks(run_preflight(target, bundle_copy))
    preflight_expect = [(k, t) for k, t in SEVERAL.expect if "." in k]
    for key, text in preflight_expect:
        assert checks[key]["status"] == "no-go" and text in checks[key]["evidence"], (key, checks[key])
    # The preflight's defects do not stop the files from running: the static defects are caught after them.
    new = _migrate_schema_and_policies(target, _without_preflight_defects(bundle_copy))
    for code, obj in [(k, t) for k, t in SEVERAL.expect if "." not in k]:
        assert any(f.code == code and obj in f.object for f in new), (code, [(f.code, f.object) for f in new])


def _without_preflight_defects(bundle):
    """The missing table would stop psql: take that one edit back (the other defects stay)."""
    path = bundle / SCHEMA
    path.write_text(path.read_text().replace(
        "UPDATE public.audit_report_archive SET title = title WHERE false;\n", ""))
    return bundle


def test_the_lock_estimate_names_temp_new_and_missing_relations(demo_target, bundle_copy, small_tables):
    apply(bundle_copy, PREFLIGHT[3])  # TEMP migration_progress
    apply(bundle_copy, PREFLIGHT[1])  # ANALYZE public.audit_reprots
    locks = {lock["table"]: lock for entry in run_preflight(demo_target, bundle_copy)["locks"]
             for lock in entry["locks"]}
    assert locks["pg_temp.migration_progress"].get("temp") is True
    assert locks["public.organizations"].get("new") is True
    assert locks["public.audit_reprots"].get("missing") is True
    assert locks["public.audit_reports"]["rows_estimate"] > 0
