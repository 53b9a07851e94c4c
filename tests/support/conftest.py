"""A migrated, multi-organization target template for lookup tests (cloned per test by target_factory)."""

import pytest

from tests.helpers import targets as target_support

ORGANIZATIONS = 3


@pytest.fixture(scope="session")
def migrated_template(target_template):
    yield from target_support.migrated_template(target_template, "cp_lookup", ORGANIZATIONS)


@pytest.fixture
def org_target(target_factory, migrated_template):
    return target_factory(name="orgs", template=migrated_template)
