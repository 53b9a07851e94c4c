"""Monitoring fixtures: a migrated target template (the bundle applied with psql, users spread over orgs)."""

import subprocess
import uuid

import pytest

from tests.support import targets as target_support

FORWARD = ("20250904000001_add_multi_tenant_organizations.sql", "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")
ORGANIZATIONS = 6


def apply_bundle(dsn: str) -> None:
    for name in FORWARD:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f",
                        str(target_support.ROOT / "migrations_sql" / name)], check=True, capture_output=True)


@pytest.fixture(scope="session")
def migrated_template(target_template):
    """A copy of the seeded template, migrated and spread over a few organizations; dropped at the end."""
    from controlpanel.targets.seeding import distribute_into_organizations

    name = f"cp_test_mon_tmpl_{uuid.uuid4().hex[:8]}"
    dsn = target_support.clone(target_template, name)
    try:
        apply_bundle(dsn)
        distribute_into_organizations(dsn, ORGANIZATIONS)
    except BaseException:
        target_support.drop(dsn)
        raise
    yield name
    target_support.drop(dsn)


@pytest.fixture
def migrated_target(target_factory, migrated_template):
    return target_factory(template=migrated_template)
