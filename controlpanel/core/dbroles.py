"""The panel's own database roles: web and workers connect as the app role, migrations run as the owner.

The app role may read and write the panel's tables but only INSERT and SELECT the audit log; it is no
superuser and owns nothing, so it cannot TRUNCATE the log, disable its triggers or switch them off with
session_replication_role. Grants are (re)applied after every `migrate`, for the tables it just created.
"""

import logging
import os

from psycopg import sql

log = logging.getLogger(__name__)
AUDIT_TABLE = "core_auditevent"


def app_role(database_name: str) -> str:
    """CONTROL_DB_APP_ROLE, or `<database>_app`: one per control database, so parallel test sessions
    (each with its own test database) never share one."""
    return os.environ.get("CONTROL_DB_APP_ROLE") or f"{database_name}_app"


def ensure_app_role(cursor, role: str) -> bool:
    """Create the login role if missing and this connection may; False when it neither exists nor can."""
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    if cursor.fetchone():
        return True
    cursor.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    if not cursor.fetchone()[0]:
        return False
    cursor.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT")
                   .format(sql.Identifier(role)).as_string())
    return True


def grant_app_role(using="default", **kwargs) -> str | None:
    """post_migrate: give the app role what the panel needs, and no more on the audit log."""
    from django.db import connections

    connection = connections[using]
    role = app_role(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        if not ensure_app_role(cursor, role):
            log.warning("control database role %s is missing and %s may not create it: create it "
                        "(scripts/ensure_database.sh) and migrate again", role, connection.settings_dict["USER"])
            return None
        ident = sql.Identifier(role)
        database = sql.Identifier(connection.settings_dict["NAME"])
        for statement in (
            "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}",
            "GRANT USAGE ON SCHEMA public TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {audit} FROM {role}",
        ):
            cursor.execute(sql.SQL(statement).format(db=database, role=ident, audit=sql.Identifier(AUDIT_TABLE))
                           .as_string())
    return role


def after_migrate(sender, using="default", **kwargs) -> None:
    grant_app_role(using)
