"""A migrated, multi-organization target template for lookup tests (cloned per test by target_factory)."""

import subprocess
import uuid

import pytest

from controlpanel.targets.seeding import distribute_into_organizations
from tests.support import targets as target_support

BUNDLE = target_support.ROOT / "migrations_sql"
FORWARD = ("20250904000001_add_multi_tenant_organizations.sql", "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")
ORGANIZATIONS = 3


def apply_bundle(dsn: str) -> None:
    """Exactly as the runbook says: psql -v ON_ERROR_STOP=1 -f <file> (a local test DSN, no password)."""
    for name in FORWARD:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(BUNDLE / name)],
                       check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def migrated_template(target_template):
    name = f"cp_lookup_{uuid.uuid4().hex[:8]}"
    dsn = target_support.clone(target_template, name)
    try:
        apply_bundle(dsn)
        distribute_into_organizations(dsn, ORGANIZATIONS)
        yield name
    finally:
        target_support.drop(dsn)


@pytest.fixture
def org_target(target_factory, migrated_template):
    return target_factory(name="orgs", template=migrated_template)
