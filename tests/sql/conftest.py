"""Fixtures for the SQL bundle tests (see sqlb_helpers for connection settings and naming)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlb_helpers import Template, admin_connect, drop_database, make_template, unique_name


@pytest.fixture(scope="session")
def pg_available():
    try:
        with admin_connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:  # pragma: no cover - environment dependent
        pytest.fail(f"PostgreSQL not reachable: {exc}")


@pytest.fixture(scope="session")
def small_template(pg_available) -> Iterator[Template]:
    yield from make_template("s", users=300, reports=5000)


@pytest.fixture(scope="session")
def nowaitlist_template(pg_available) -> Iterator[Template]:
    yield from make_template("n", users=100, reports=1500, waitlist=False)


@pytest.fixture(scope="session")
def big_template(pg_available) -> Iterator[Template]:
    yield from make_template("b", users=2000, reports=200_000)


@pytest.fixture
def clone():
    """Factory: clone(template) -> database name of a fresh copy, dropped at teardown."""
    created: list[str] = []

    def _clone(template: Template) -> str:
        name = unique_name()
        with admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                          sql.Identifier(template.name)))
        created.append(name)
        return name

    yield _clone
    for name in created:
        drop_database(name)


