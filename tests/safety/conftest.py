"""Fixtures for the safety tests: editable bundle copies and targets migrated with psql."""

from pathlib import Path

import psycopg
import pytest

from controlpanel.targets.connection import dsn_for
from tests.helpers import targets as target_support


@pytest.fixture
def small_access_sample(settings):
    """Rehearsal tests measure the access diff for 12 users, not all 200 of the template (each defect is in
    every user's rows, and the suite stays fast), with a 2 s lock-wait threshold."""
    settings.ACCESS_ALL_USERS_UP_TO = 12
    settings.ACCESS_SAMPLE_USERS = 12
    # Brief strong locks stretch on a machine shared by many test sessions: 2 s keeps them apart from the
    # seconds-long holds the broken bundles take.
    settings.EVIDENCE_LOCK_WAIT_THRESHOLD_SECONDS = 2.0


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


SCHEMA_FILE = "20250904000001_add_multi_tenant_organizations.sql"
ROLLBACK_FILE = "rollback-multi-tenant-organizations.sql"
AUTH_TRIGGER_DROP = "DROP TRIGGER IF EXISTS platform_test_on_auth_users ON auth.users;"


def add_auth_users_trigger(bundle: Path) -> int:
    """Make a bundle like the one issue 12 found: 0001 hangs a trigger on auth.users (TRIGGER privilege is
    enough) and the rollback drops it (only the owner may). Returns the rollback line of the DROP TRIGGER."""
    with (bundle / SCHEMA_FILE).open("a") as schema:
        schema.write("\nCREATE OR REPLACE FUNCTION public.platform_test_noop() RETURNS trigger LANGUAGE plpgsql "
                     "AS $$ BEGIN RETURN NEW; END $$;\n"
                     "CREATE OR REPLACE TRIGGER platform_test_on_auth_users AFTER INSERT ON auth.users "
                     "FOR EACH ROW EXECUTE FUNCTION public.platform_test_noop();\n")
    rollback = bundle / ROLLBACK_FILE
    lines = rollback.read_text().splitlines()
    lines += ["", AUTH_TRIGGER_DROP, "DROP FUNCTION IF EXISTS public.platform_test_noop();"]
    rollback.write_text("\n".join(lines) + "\n")
    return len(lines) - 1
