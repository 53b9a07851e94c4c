"""PostgreSQL 17 (what new Supabase projects run): the bundle's whole cycle passes there as on 15."""

import uuid

import psycopg
import pytest

from controlpanel.targets import zoo
from tests.helpers.bundle_cycle import assert_bundle_cycle


@pytest.fixture
def pg17_target(pg17_server):
    """pg17_target(shapes) -> BuiltTarget on the PostgreSQL 17 server; dropped after."""
    made = []

    def make(shapes):
        made.append(zoo.build_target(zoo.database_dsn(pg17_server, f"zoo_t17_{uuid.uuid4().hex[:8]}"), shapes,
                                     users=40, reports=400))
        return made[-1]

    yield make
    for target in made:
        zoo.drop_target(target.admin_dsn)


def test_the_server_is_17(pg17_server):
    with psycopg.connect(pg17_server) as conn:
        assert conn.info.server_version // 10000 == 17


@pytest.mark.parametrize("shapes", [("baseline",)], ids="+".join)
def test_the_bundle_cycle_on_17(pg17_target, shapes):
    assert_bundle_cycle(pg17_target(shapes))
