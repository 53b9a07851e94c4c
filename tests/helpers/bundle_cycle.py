"""The bundle's whole life on one target, run as the runbook says (psql -v ON_ERROR_STOP=1 -f, as the target's
own connecting role): forward, validation, every file again, rollback back to the exact schema and rows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg

from controlpanel.runbook.definition import ROLLBACK, STEP1, STEP2
from controlpanel.runbook.validation import judge
from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts
from controlpanel.targets.zoo import BuiltTarget

ROOT = Path(__file__).resolve().parents[2]
FORWARD = [step.file for step in STEP1.steps]
VALIDATION = STEP2.steps[0].file
EMERGENCY_ROLLBACK = next(step.file for step in ROLLBACK.steps if step.key == "rollback.emergency")


def psql(dsn: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(path)],
                          capture_output=True, text=True, timeout=600)


def run_file(target: BuiltTarget, name: str, bundle: Path) -> str:
    """Run one bundle file as the target's connecting role; its notices (stderr). Fails the test on an error."""
    done = psql(target.dsn, bundle / name)
    assert done.returncode == 0, (f"{name} failed on {'+'.join(target.shapes)} as {target.connect_role}:\n"
                                  f"{done.stderr[-3000:]}")
    return done.stderr


def validate(target: BuiltTarget, bundle: Path) -> None:
    notices = run_file(target, VALIDATION, bundle)
    verdict = judge(notices.splitlines())
    assert verdict.passed, f"validation on {'+'.join(target.shapes)}: {verdict.message}\n{notices[-3000:]}"


def snapshot(target: BuiltTarget) -> tuple[dict, dict]:
    """(schema fingerprint, row counts of the original tables), read as superuser."""
    with psycopg.connect(target.admin_dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'auth') AND c.relkind = 'r' AND c.relname <> 'migration_progress'"
            " ORDER BY 1")]
        return schema_fingerprint(conn), table_counts(conn, tables)


def bundle_dir() -> Path:
    """The bundle under test: MIGRATION_BUNDLE_DIR (the panel's setting), else the project's."""
    return Path(os.environ.get("MIGRATION_BUNDLE_DIR") or ROOT / "migrations_sql")


def assert_bundle_cycle(target: BuiltTarget, bundle: Path | None = None) -> None:
    """Forward, validation without FAILED, idempotent re-run of every file, exact rollback (twice)."""
    bundle = bundle or bundle_dir()
    fingerprint_before, counts_before = snapshot(target)
    for name in FORWARD:
        run_file(target, name, bundle)
    validate(target, bundle)
    migrated, _ = snapshot(target)
    assert migrated != fingerprint_before  # the fingerprint does see the migration
    for name in FORWARD:
        run_file(target, name, bundle)
    validate(target, bundle)
    assert diff_fingerprints(migrated, snapshot(target)[0]) == [], "a re-run changed the schema"
    for _ in range(2):  # the rollback is idempotent too
        run_file(target, EMERGENCY_ROLLBACK, bundle)
        fingerprint_after, counts_after = snapshot(target)
        assert diff_fingerprints(fingerprint_before, fingerprint_after) == [], "the rollback is not exact"
        assert counts_after == counts_before, "the rollback lost or added rows"
