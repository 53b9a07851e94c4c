"""The library of broken bundles, each caught at its own stage with the object named (and the good bundle not)."""

import psycopg
import pytest

from controlpanel.evidence.functions import check_functions
from controlpanel.evidence.rls_audit import BLOCKING, audit_rls, new_findings
from controlpanel.safety.bundlecheck import analyse
from controlpanel.targets.connection import dsn_for
from controlpanel.targets.sqlscript import load_script
from tests.support.targets import forward_files, psql_file

from .broken_bundles import PLPGSQL, POLICIES, SCHEMA, STATIC, apply


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
    return sorted(analyse([load_script(bundle / name) for name in forward_files()]).created_functions)


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
