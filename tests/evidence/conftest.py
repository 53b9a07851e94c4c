"""Targets for the evidence tests: the shared seeded baseline, migrated with the real bundle by psql."""

import psycopg
import pytest

from tests.helpers import targets as target_support
from tests.helpers.targets import psql_file  # noqa: F401 - the tests apply single files too

migrate = target_support.apply_bundle


def execute(dsn: str, statement: str, params=None):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture(scope="session")
def migrated_template(target_template):
    """The baseline, migrated, with users spread over 4 organizations (cloned by each test)."""
    yield from target_support.migrated_template(target_template, "cp_evtpl", organizations=4)


@pytest.fixture
def migrated_target(target_factory, migrated_template):
    return target_factory(template=migrated_template)


@pytest.fixture
def target_dsn():
    from controlpanel.targets.connection import dsn_for

    return dsn_for
