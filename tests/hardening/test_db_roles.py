"""The panel's own database role cannot rewrite the audit log; the owner cannot truncate it by accident."""

import uuid

import psycopg
import pytest
from django.db import connection

from controlpanel.core.dbroles import AUDIT_TABLE, app_role


def connect_as(role: str) -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"], dbname=s["NAME"], user=role, autocommit=True)


@pytest.fixture
def app_conn(db):
    with connect_as(app_role(connection.settings_dict["NAME"])) as conn:
        yield conn


def test_the_app_role_is_no_superuser_and_owns_nothing(app_conn):
    superuser, owns = app_conn.execute(
        "SELECT rolsuper, EXISTS (SELECT 1 FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner "
        "WHERE o.rolname = current_user) FROM pg_roles WHERE rolname = current_user").fetchone()
    assert superuser is False and owns is False


def test_the_app_role_may_insert_and_read_the_audit_log(app_conn):
    with app_conn.transaction(force_rollback=True):
        app_conn.execute(f"INSERT INTO {AUDIT_TABLE} (at, username, action, object_type, object_id, object_repr, "
                         "detail) VALUES (now(), 'probe', 'probe', '', '', '', '{}')")
        assert app_conn.execute(f"SELECT count(*) FROM {AUDIT_TABLE} WHERE action = 'probe'").fetchone()[0] == 1
        app_conn.execute("UPDATE runs_run SET notes = notes")  # and write the panel's other tables


@pytest.mark.parametrize("statement", [
    f"UPDATE {AUDIT_TABLE} SET action = 'rewritten'",
    f"DELETE FROM {AUDIT_TABLE}",
    f"TRUNCATE {AUDIT_TABLE}",
    f"ALTER TABLE {AUDIT_TABLE} DISABLE TRIGGER ALL",
    f"DROP TRIGGER core_auditevent_append_only ON {AUDIT_TABLE}",
    "SET session_replication_role = replica",
])
def test_the_app_role_cannot_rewrite_history(app_conn, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute(statement)


def test_truncate_is_refused_by_a_trigger_even_with_the_privilege(transactional_db):
    role = f"hardening_truncator_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')
        cur.execute(f'GRANT TRUNCATE ON {AUDIT_TABLE} TO "{role}"')
    try:
        with connect_as(role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(f"TRUNCATE {AUDIT_TABLE}")
    finally:
        with connection.cursor() as cur:
            cur.execute(f'REVOKE ALL ON {AUDIT_TABLE} FROM "{role}"')
            cur.execute(f'DROP ROLE "{role}"')
