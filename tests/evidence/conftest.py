"""Targets for the evidence tests: the shared seeded baseline, migrated with the real bundle by psql."""

import subprocess
import uuid

import psycopg
import pytest
from django.conf import settings

from tests.support import targets as target_support

FORWARD = ("20250904000001_add_multi_tenant_organizations.sql",
           "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")


def psql_file(dsn: str, name: str) -> None:
    """Apply one bundle file exactly as the runbook says: psql -v ON_ERROR_STOP=1 -f FILE."""
    path = settings.MIGRATION_BUNDLE_DIR / name
    proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def migrate(dsn: str) -> None:
    for name in FORWARD:
        psql_file(dsn, name)


def execute(dsn: str, statement: str, params=None):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture(scope="session")
def migrated_template(target_template):
    """The baseline, migrated, with users spread over 4 organizations (cloned by each test)."""
    name = f"cp_evtpl_{uuid.uuid4().hex[:8]}"
    dsn = target_support.clone(target_template, name)
    try:
        migrate(dsn)
        from controlpanel.targets.seeding import distribute_into_organizations

        distribute_into_organizations(dsn, 4)
        yield name
    finally:
        target_support.drop(dsn)


@pytest.fixture
def migrated_target(target_factory, migrated_template):
    return target_factory(template=migrated_template)


@pytest.fixture
def target_dsn():
    from controlpanel.targets.connection import dsn_for

    return dsn_for
