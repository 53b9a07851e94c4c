"""Building throwaway target databases for tests: one seeded template per session, cheap clones."""

import hashlib
from pathlib import Path

import psycopg
from psycopg import sql

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
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return dsn(name)


def _fingerprint(users: int, reports: int) -> str:
    digest = hashlib.sha256(f"{users}:{reports}".encode())
    for path in sorted((ROOT / "migrations_sql" / "baseline").glob("*.sql")) + [
        ROOT / "controlpanel" / "targets" / "seeding.py"
    ]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def ensure_template(users: int, reports: int) -> str:
    """A seeded baseline database named after the baseline and seeder contents (rebuilt when they change)."""
    from controlpanel.targets.demo import build_target

    name = f"cp_tmpl_{_fingerprint(users, reports)}"
    with _admin() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if not exists:
        building = f"{name}_building"
        drop(dsn(building))
        build_target(dsn(building), users=users, reports=reports)
        with _admin() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building),
                                                                       sql.Identifier(name)))
    return name


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
