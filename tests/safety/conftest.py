"""Fixtures for the safety tests: editable bundle copies and targets migrated with psql."""

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from controlpanel.targets.connection import dsn_for
from controlpanel.targets.pgenv import client_env

FORWARD = ("20250904000001_add_multi_tenant_organizations.sql", "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    """A private copy of the SQL bundle that a test edits (one change each)."""
    target = tmp_path / "bundle"
    shutil.copytree(settings.MIGRATION_BUNDLE_DIR, target, ignore=shutil.ignore_patterns("baseline"))
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}: the bundle changed, update the test"
    path.write_text(text.replace(old, new, 1))


def migrate(target) -> None:
    """Apply the forward files the way the runbook says (psql -v ON_ERROR_STOP=1 -f)."""
    for name in FORWARD:
        path = Path(settings.MIGRATION_BUNDLE_DIR) / name
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                       env=client_env(target), check=True, capture_output=True)


def query(target, sql: str, params=None):
    with psycopg.connect(dsn_for(target), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []
