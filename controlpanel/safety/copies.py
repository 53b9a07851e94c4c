"""Disposable copies of a target database for rehearsals, on the target's own server.

Why pg_dump | psql and not CREATE DATABASE … TEMPLATE: a template copy needs the source database to
have no other connection at all (a live target always has some: the application, the panel's health
checks), so it fails unpredictably. pg_dump reads one consistent MVCC snapshot taking only ACCESS SHARE
locks (writers continue), and psql restores it anywhere. A production target gets a schema-only copy:
no customer row is read. Staging and demo get a full copy so the backfill and counts are rehearsed too.

The copy's DSN lives only in this process's environment (under a variable named on an unsaved Target),
so connections still go through `targets.connection` and client programs get it via `targets.pgenv`.
"""

import os
import subprocess
import tempfile
import time
import uuid

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from controlpanel.targets import ownership
from controlpanel.targets.connection import connect, dsn_for, target_connection
from controlpanel.targets.models import Target
from controlpanel.targets.pgenv import ClientProgramError, check_client_version, client_env, client_program

COPY_PREFIX = "cp_rehearsal_"


def copy_prefix() -> str:
    """The name prefix of this installation's copies: REHEARSAL_COPY_TAG (e.g. a test session's token) keeps
    concurrent sessions on one server apart, so each looks for and cleans up only its own copies."""
    tag = os.environ.get("REHEARSAL_COPY_TAG", "")  # read per call: a test session sets it after settings load
    return f"{COPY_PREFIX}{tag}_" if tag else COPY_PREFIX


class CopyFailed(Exception):
    """The copy could not be made; the message is safe to show (no DSN)."""


def _tail(text: str, lines: int = 4) -> str:
    """The last lines of a program's stderr on one line (with ON_ERROR_STOP the error is last)."""
    return " / ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def _pipe(dump: list[str], dump_env: dict, restore: list[str], restore_env: dict, source_name: str) -> None:
    """dump | restore; on failure the failing program's own stderr. When psql stops (ON_ERROR_STOP) pg_dump
    dies of the broken pipe with nothing to say: the restore's message is the cause and comes first."""
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as restore_err:
        producer = subprocess.Popen(dump, env=dump_env, stdout=subprocess.PIPE, stderr=dump_err)
        consumer = subprocess.Popen(restore, env=restore_env, stdin=producer.stdout, stdout=subprocess.DEVNULL,
                                    stderr=restore_err)
        if producer.stdout is not None:  # always set (stdout=PIPE); the check is for the type
            producer.stdout.close()
        consumer.wait()
        producer.wait()
        messages = {}
        for name, handle in (("dump", dump_err), ("restore", restore_err)):
            handle.seek(0)
            messages[name] = _tail(handle.read().decode(errors="replace"))
    if consumer.returncode != 0 and (messages["restore"] or producer.returncode == 0):
        raise CopyFailed(f"restoring the copy ({restore[0]}) failed: "
                         f"{messages['restore'] or f'exit code {consumer.returncode}, no message'}")
    if producer.returncode != 0:
        raise CopyFailed(f"pg_dump of {source_name} failed: "
                         f"{messages['dump'] or f'exit code {producer.returncode}, no message'}")


class DisposableCopy:
    def __init__(self, target, *, schema_only: bool):
        self.source = target
        self.schema_only = schema_only
        token = uuid.uuid4().hex[:10]
        self.database = f"{copy_prefix()}{token}"
        self.env_var = f"CP_REHEARSAL_COPY_{token.upper()}"
        self.target = Target(name=f"{target.name}-rehearsal-copy", environment=target.environment,
                             dsn_env_var=self.env_var)
        self.created = False
        self.seconds = 0.0
        self.migrator = ""
        self.standins: dict[str, str] = {}
        self.privileges: dict = {}

    @property
    def method(self) -> str:
        return ("pg_dump --schema-only | psql (no data read)" if self.schema_only
                else "pg_dump | psql (full copy, one consistent snapshot)")

    def create(self) -> float:
        started = time.monotonic()
        with target_connection(self.source, application_name="controlpanel-rehearsal") as conn:
            dump_program = client_program("pg_dump")
            try:
                check_client_version(dump_program, conn.info.server_version)
            except ClientProgramError as exc:
                raise CopyFailed(str(exc)) from None
            self.migrator = ownership.current_role(conn)
            objects = ownership.owned_objects(conn)
            defaults = ownership.default_grants(conn)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
            self.created = True
        os.environ[self.env_var] = make_conninfo(dsn_for(self.source), dbname=self.database)
        # No owners, no grants: restoring them would need membership of every owner (on Supabase
        # supabase_admin, supabase_auth_admin). They are re-created below from the source's catalog.
        dump = [dump_program, "--no-password", "--no-publications", "--no-subscriptions", "--no-owner",
                "--no-acl"]
        if self.schema_only:
            dump.append("--schema-only")
        restore = [client_program("psql"), "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", os.devnull]
        _pipe(dump, client_env(self.source), restore, client_env(self.target), self.source.name)
        self._restore_privileges(objects, defaults)
        self.seconds = time.monotonic() - started
        return self.seconds

    def _restore_privileges(self, objects, defaults) -> None:
        """Objects the migration role does not own on the source go to copy-local stand-ins for their owners,
        which the role is not a member of once done: whatever "must be owner" fails in production fails here."""
        foreign = {obj.owner for obj in objects if not obj.ours}
        with connect(self.target, application_name="controlpanel-rehearsal-privileges") as conn:
            ownership.create_standins(conn, foreign, self.database, self.migrator, into=self.standins)
            try:
                with conn.transaction():
                    self.privileges = ownership.apply_to_copy(conn, objects, self.standins, self.migrator)
                    self.privileges["default_grants"] = ownership.apply_default_grants(conn, defaults, self.standins)
            except psycopg.Error as exc:
                raise CopyFailed("re-creating owners and grants on the copy failed: "
                                 f"{exc.diag.message_primary or exc}") from None
            finally:
                ownership.revoke_memberships(conn, self.standins, self.migrator)
        self.privileges["stand_ins"] = dict(self.standins)

    def drop(self) -> None:
        try:
            if self.created:
                with target_connection(self.source, application_name="controlpanel-rehearsal") as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)))
                    ownership.drop_roles(conn, self.standins.values())  # they owned objects of the copy only
                self.created = False
        finally:
            os.environ.pop(self.env_var, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.drop()


