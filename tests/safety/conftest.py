"""Fixtures for the safety tests: editable bundle copies and targets migrated with psql."""

from pathlib import Path

import psycopg

from controlpanel.targets.connection import dsn_for
from tests.support import targets as target_support


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}: the bundle changed, update the test"
    path.write_text(text.replace(old, new, 1))


def migrate(target) -> None:
    """Apply the forward files the way the runbook says (psql -v ON_ERROR_STOP=1 -f)."""
    target_support.apply_bundle(dsn_for(target))


def query(target, sql: str, params=None):
    with psycopg.connect(dsn_for(target), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []
