"""Building throwaway target databases for tests: seeded zoo templates (controlpanel/targets/zoo.py), cheap clones."""

from pathlib import Path

import psycopg
from psycopg import sql

from controlpanel.targets import zoo

ROOT = Path(__file__).resolve().parents[2]
SERVER = "postgresql://postgres@127.0.0.1:5432/"


def dsn(name: str) -> str:
    return SERVER + name


def _admin():
    return psycopg.connect(dsn("postgres"), autocommit=True)


def drop(target_dsn: str) -> None:
    name = target_dsn.rsplit("/", 1)[1]
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def clone(template: str, name: str) -> str:
    """A fresh copy of ``template`` (owned like it); returns the superuser DSN."""
    return zoo.clone_target(dsn(template), name).admin_dsn


def ensure_template(users: int, reports: int, shapes=("baseline",), uid_variant: str | None = None) -> str:
    """A seeded zoo template for these shapes, sizes and content (one per fingerprint, shared by sessions)."""
    return zoo.ensure_template(shapes, uid_variant, users=users, reports=reports, server=dsn("postgres")).name


def forward_files() -> list[str]:
    """Step 1's files in runbook order, from the runbook definition."""
    from controlpanel.runbook.definition import STEP1

    return [step.file for step in STEP1.steps]


def psql_file(target_dsn: str, name: str, bundle: Path | None = None) -> None:
    """Apply one bundle file exactly as the runbook says: psql -v ON_ERROR_STOP=1 -f FILE."""
    import subprocess

    path = (bundle or ROOT / "migrations_sql") / name
    proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target_dsn, "-f", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"psql -f {name} failed: {proc.stderr[-3000:]}"


def apply_bundle(target_dsn: str) -> None:
    for name in forward_files():
        psql_file(target_dsn, name)


def migrated_template(template: str, prefix: str, organizations: int):
    """Generator for a session fixture: a migrated copy of `template` spread over `organizations`; dropped after."""
    import uuid

    from controlpanel.targets.seeding import distribute_into_organizations

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    copy = clone(template, name)
    try:
        apply_bundle(copy)
        distribute_into_organizations(copy, organizations)
        yield name
    finally:
        drop(copy)
