"""Builds local target databases (the demo target, and throwaway targets in tests) from the baseline."""

from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .connection import scalar
from .zoo import BASELINE_DIR


def baseline_files() -> list[Path]:
    return sorted(BASELINE_DIR.glob("*.sql"))


def maintenance_dsn(dsn: str) -> str:
    """Same server, the `postgres` database: where CREATE/DROP DATABASE are issued."""
    return make_conninfo(dsn, dbname="postgres")


def database_exists(dsn: str) -> bool:
    name = str(conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(maintenance_dsn(dsn), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(dsn: str, template: str | None = None) -> bool:
    """Create the database named in the DSN if missing; True when it was created."""
    if database_exists(dsn):
        return False
    name = str(conninfo_to_dict(dsn)["dbname"])
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(maintenance_dsn(dsn), autocommit=True) as conn:
        conn.execute(statement)
    return True


def drop_database(dsn: str) -> None:
    name = str(conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(maintenance_dsn(dsn), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def apply_baseline(dsn: str) -> None:
    """Apply the baseline files in order; each file is idempotent."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in baseline_files():
            conn.execute(path.read_text())


def has_baseline(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return scalar(conn, "SELECT to_regclass('public.audit_reports') IS NOT NULL")


def user_count(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return scalar(conn, "SELECT count(*) FROM auth.users")


def build_target(dsn: str, users: int, reports: int, seed: int = 42) -> dict:
    """Create, baseline and seed a target unless it already exists with data. Returns what was done."""
    from .seeding import seed_target

    created = create_database(dsn)
    done: dict[str, object] = {"created": created, "baseline": False, "seeded": None}
    if not has_baseline(dsn):
        apply_baseline(dsn)
        done["baseline"] = True
    if user_count(dsn) == 0 and users:
        with psycopg.connect(dsn, autocommit=True) as conn:
            done["seeded"] = seed_target(conn, users=users, reports=reports, seed=seed)
    return done
