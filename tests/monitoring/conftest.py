"""Monitoring fixtures: a migrated target template (the bundle applied with psql, users spread over orgs)."""

import pytest

from tests.helpers import targets as target_support

ORGANIZATIONS = 6  # shared organizations made by distribute_into_organizations after the migration
# Every organization: those, one personal organization per user of the template (200) and the unassigned one.
ALL_ORGANIZATIONS = ORGANIZATIONS + 200 + 1


@pytest.fixture(scope="session")
def migrated_template(target_template):
    """A copy of the seeded template, migrated and spread over a few organizations; dropped at the end."""
    yield from target_support.migrated_template(target_template, "cp_test_mon_tmpl", ORGANIZATIONS)


@pytest.fixture
def migrated_target(target_factory, migrated_template):
    return target_factory(template=migrated_template)
