"""The target zoo: local target databases shaped like the installations the panel meets (no Django).

A shape set composes one schema with modifiers (see ``SHAPES``); ``build_target`` creates a database,
applies the baseline's files and the shapes' files from ``migrations_sql/baseline/``, optionally seeds it
with ``seeding.seed_target``, and returns a ``BuiltTarget``: the DSN the panel and the bundle connect with
(for ``platform`` the non-superuser migration role) and the superuser DSN for set-up and inspection.
``ensure_template`` builds one template per content fingerprint for tests and benchmarks, under an
advisory lock so that concurrent sessions on one server build it once; ``clone_target`` copies one.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[2]
BASELINE_DIR = ROOT / "migrations_sql" / "baseline"
SHAPES_DIR = BASELINE_DIR / "shapes"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

SHAPES = {
    "baseline": "today's ProcessAudit installation (migrations_sql/baseline/*.sql)",
    "minimal": "only the contract's columns, no optional tables, other names for the owner policies",
    "strict": "optional columns NOT NULL without defaults, CHECK enumerations, utc timestamps, an extra view, "
              "a profile trigger on auth.users",
    "platform": "Supabase's privileges: a non-superuser BYPASSRLS migration role owning public, auth owned by "
                "another role, extensions in schema extensions",
}
SCHEMA_SHAPES = ("baseline", "minimal")  # exactly one of these; the others modify it, in this order:
MODIFIER_SHAPES = ("strict", "platform")

# Every auth.uid() Supabase has shipped: claim.sub only, claims only, both in either order; each with and
# without nullif (without it, an empty setting is cast and fails). The default is the stand-in's own.
_SUB = "current_setting('request.jwt.claim.sub', true)"
_CLAIMS = "current_setting('request.jwt.claims', true)"
UID_VARIANTS = {
    "sub": f"SELECT {_SUB}::uuid",
    "sub-nullif": f"SELECT nullif({_SUB}, '')::uuid",
    "claims": f"SELECT ({_CLAIMS}::jsonb ->> 'sub')::uuid",
    "claims-nullif": f"SELECT (nullif({_CLAIMS}, '')::jsonb ->> 'sub')::uuid",
    "sub-then-claims": f"SELECT coalesce({_SUB}, ({_CLAIMS}::jsonb ->> 'sub'))::uuid",
    "sub-then-claims-nullif": None,  # 00_supabase_standin.sql's definition, left as it is
    "claims-then-sub": f"SELECT coalesce(({_CLAIMS}::jsonb ->> 'sub'), {_SUB})::uuid",
    "claims-then-sub-nullif": f"SELECT coalesce((nullif({_CLAIMS}, '')::jsonb ->> 'sub'), nullif({_SUB}, ''))::uuid",
}
DEFAULT_UID_VARIANT = "sub-then-claims-nullif"
API_ROLES = ("anon", "authenticated", "service_role")
TEMPLATE_PREFIX = "cp_tmpl_"  # the tests' templates; benchmarks use their own family


class ZooError(ValueError):
    """An impossible shape set, variant or name."""


def normalize_shapes(shapes: str | Iterable[str] = ("baseline",)) -> tuple[str, ...]:
    """Canonical order: the schema shape first (baseline unless minimal), then the modifiers."""
    if isinstance(shapes, str):
        shapes = [s for s in re.split(r"[,+\s]+", shapes) if s]
    wanted = set(shapes)
    unknown = wanted - set(SHAPES)
    if unknown:
        raise ZooError(f"unknown shape(s) {', '.join(sorted(unknown))}; known: {', '.join(SHAPES)}")
    if wanted >= set(SCHEMA_SHAPES):
        raise ZooError("baseline and minimal are two different schemas: pick one")
    schema = "minimal" if "minimal" in wanted else "baseline"
    return (schema, *(s for s in MODIFIER_SHAPES if s in wanted))


def check_uid_variant(variant: str | None) -> str:
    variant = variant or DEFAULT_UID_VARIANT
    if variant not in UID_VARIANTS:
        raise ZooError(f"unknown auth.uid() variant {variant!r}; known: {', '.join(UID_VARIANTS)}")
    return variant


@dataclass(frozen=True)
class PlatformRoles:
    """The cluster-wide roles a platform target uses: Supabase's `postgres` and `supabase_auth_admin`."""

    migration: str
    auth_admin: str

    @classmethod
    def for_prefix(cls, prefix: str) -> PlatformRoles:
        clean = re.sub(r"[^a-z0-9_]", "_", prefix.lower()).strip("_")
        if len(clean) > 48:  # role names are at most 63 bytes
            clean = clean[:39] + "_" + hashlib.sha256(clean.encode()).hexdigest()[:8]
        return cls(migration=f"{clean}_postgres", auth_admin=f"{clean}_auth_admin")


@dataclass(frozen=True)
class BuiltTarget:
    """A built (or cloned) target: connect the panel and the bundle with ``dsn``, inspect with ``admin_dsn``."""

    name: str
    dsn: str
    admin_dsn: str
    shapes: tuple[str, ...]
    uid_variant: str
    roles: PlatformRoles | None = None
    seeded: dict | None = None
    info: dict = field(default_factory=dict)

    @property
    def platform(self) -> bool:
        return self.roles is not None

    @property
    def connect_role(self) -> str:
        return str(conninfo_to_dict(self.dsn).get("user") or "postgres")


# --- servers and databases ------------------------------------------------------------------------------

def split_target(target: str, server: str | None = None) -> tuple[str, str]:
    """(server DSN on its maintenance database, database name) from a DSN naming a database, or a bare name."""
    if "=" in target or "://" in target:
        name = conninfo_to_dict(target).get("dbname")
        if not name:
            raise ZooError("the DSN names no database")
        return make_conninfo(target, dbname="postgres"), str(name)
    return make_conninfo(server or DEFAULT_SERVER, dbname="postgres"), target


def database_dsn(server: str, name: str, user: str | None = None) -> str:
    """A URL DSN for database ``name`` on ``server`` (as ``user`` if given), e.g. postgresql://u@host:5432/db."""
    params = conninfo_to_dict(server)
    if user:
        params["user"] = user
    params["dbname"] = name
    host, port = params.pop("host", "127.0.0.1"), params.pop("port", "5432")
    login, password = str(params.pop("user", "postgres")), params.pop("password", None)
    params.pop("dbname")
    auth = quote(login, safe="") + (":" + quote(str(password), safe="") if password else "")
    query = ("?" + urlencode(params)) if params else ""
    return f"postgresql://{auth}@{host}:{port}/{quote(name, safe='')}{query}"


def _admin(server: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(server, dbname="postgres"), autocommit=True)


def database_exists(server: str, name: str) -> bool:
    with _admin(server) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _drop_database(conn, name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- the SQL of each shape --------------------------------------------------------------------------------

def shape_files(shapes: Sequence[str]) -> list[Path]:
    """The files a shape set applies as superuser, in order (platform's privileges come from code)."""
    shapes = normalize_shapes(shapes)
    files = sorted(BASELINE_DIR.glob("*.sql"))
    if shapes[0] == "minimal":
        files = [files[0], SHAPES_DIR / "minimal.sql"]
    if "strict" in shapes:
        files.append(SHAPES_DIR / "strict.sql")
    return files


def uid_sql(variant: str) -> str | None:
    body = UID_VARIANTS[check_uid_variant(variant)]
    if body is None:
        return None
    return f"CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ {body} $$"


def content_fingerprint() -> str:
    """Hash of everything that builds a zoo target: baseline and shape files, this module, the seeder."""
    digest = hashlib.sha256()
    paths = sorted(BASELINE_DIR.glob("*.sql")) + sorted(SHAPES_DIR.glob("*.sql")) + [
        Path(__file__), Path(__file__).with_name("seeding.py")]
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _platform_statements(db: str, roles: PlatformRoles) -> list[sql.SQL | sql.Composed]:
    """Supabase's privilege model, applied as superuser to a built database (catalog changes only)."""
    mig, auth_admin = sql.Identifier(roles.migration), sql.Identifier(roles.auth_admin)
    api = sql.SQL(", ").join(sql.Identifier(r) for r in API_ROLES)
    return [
        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(db), mig),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS extensions AUTHORIZATION {}").format(mig),
        sql.SQL("GRANT USAGE ON SCHEMA extensions TO {}").format(api),
        sql.SQL('ALTER EXTENSION "uuid-ossp" SET SCHEMA extensions'),
        sql.SQL("ALTER EXTENSION pgcrypto SET SCHEMA extensions"),
        sql.SQL("ALTER SCHEMA public OWNER TO {}").format(mig),
        # Everything in public belongs to the migration role, everything in auth to the auth admin.
        sql.SQL("""
        DO $$
        DECLARE
          obj record;
        BEGIN
          FOR obj IN
            SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('public', 'auth') AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))  -- owned sequences follow
          LOOP
            EXECUTE format('ALTER %s %I.%I OWNER TO %I',
                           CASE obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                            WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                           obj.nspname, obj.relname, CASE obj.nspname WHEN 'auth' THEN {auth} ELSE {mig} END);
          END LOOP;
          FOR obj IN
            SELECT p.oid::regprocedure AS fn, n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname IN ('public', 'auth')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                              AND d.objid = p.oid AND d.deptype = 'e')
          LOOP
            EXECUTE format('ALTER ROUTINE %s OWNER TO %I', obj.fn,
                           CASE obj.nspname WHEN 'auth' THEN {auth} ELSE {mig} END);
          END LOOP;
        END
        $$
        """).format(auth=sql.Literal(roles.auth_admin), mig=sql.Literal(roles.migration)),
        sql.SQL("ALTER SCHEMA auth OWNER TO {}").format(auth_admin),
        # What Supabase leaves `postgres` in auth: enough to reference users and hang triggers, not to own.
        sql.SQL("GRANT USAGE ON SCHEMA auth TO {}").format(mig),
        sql.SQL("GRANT SELECT, REFERENCES, TRIGGER ON auth.users TO {}").format(mig),
        sql.SQL("GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO {}").format(mig),
        *(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT {} ON {} TO {}").format(
            mig, sql.SQL(privilege), sql.SQL(kind), api)
          for privilege, kind in (("ALL", "TABLES"), ("ALL", "SEQUENCES"), ("EXECUTE", "FUNCTIONS"))),
    ]


@contextmanager
def _roles_lock(server: str, roles: PlatformRoles):
    """Serializes creating, using and dropping one family's roles across sessions (a drop between another
    session's CREATE ROLE and its ALTER ... OWNER would break that build)."""
    with _admin(server) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('zoo roles ' || %s))", (roles.migration,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('zoo roles ' || %s))", (roles.migration,))


def ensure_platform_roles(server: str, roles: PlatformRoles) -> None:
    """Create (or re-assert) the roles; the shared API roles are created if missing, never dropped."""
    with _admin(server) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('zoo api roles'))")  # CREATE ROLE races
        for role in API_ROLES:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                bypass = sql.SQL(" BYPASSRLS" if role == "service_role" else "")
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(sql.Identifier(role)) + bypass)
        for role, attributes in ((roles.migration, "LOGIN NOSUPERUSER BYPASSRLS CREATEDB CREATEROLE INHERIT"),
                                 (roles.auth_admin, "NOLOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE NOINHERIT")):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(f"{verb} ROLE {{}} {attributes}").format(sql.Identifier(role)))
        mig = sql.Identifier(roles.migration)
        conn.execute(sql.SQL("GRANT {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier(r) for r in API_ROLES), mig))
        conn.execute(sql.SQL('ALTER ROLE {} SET search_path = "$user", public, extensions').format(mig))


def drop_platform_roles(server: str, roles: PlatformRoles) -> bool:
    """Drop the roles unless another database still holds objects of theirs; True when dropped."""
    with _roles_lock(server, roles), _admin(server) as conn:
        try:
            with conn.transaction():
                for role in (roles.migration, roles.auth_admin):
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        except psycopg.errors.DependentObjectsStillExist:
            return False
    return True


# --- building ---------------------------------------------------------------------------------------------

def build_target(target: str, shapes: str | Iterable[str] = ("baseline",), users: int = 0, reports: int = 0,
                 uid_variant: str | None = None, *, seed: int = 42, replace: bool = False,
                 role_prefix: str | None = None, extra_sql: Sequence[str] = (), server: str | None = None,
                 analyze: bool = True, vacuum: bool = True) -> BuiltTarget:
    """Create database ``target`` (a DSN or a name) with the given shapes, seeded when ``users`` > 0.

    An existing database is refused unless ``replace``. ``extra_sql`` runs as superuser after the shapes'
    files and before seeding (tests use it for generated installations). Platform roles are named after
    ``role_prefix`` (default: the database name) so that clones of a template share them.
    """
    from controlpanel.targets.seeding import seed_target

    server, name = split_target(target, server)
    shapes, uid_variant = normalize_shapes(shapes), check_uid_variant(uid_variant)
    roles = PlatformRoles.for_prefix(role_prefix or name) if "platform" in shapes else None
    started = time.monotonic()
    with _admin(server) as conn:
        if replace:
            _drop_database(conn, name)
        elif conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise ZooError(f"database {name} exists (replace it with replace=True / --replace)")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin_dsn = database_dsn(server, name)
    phases: dict[str, float] = {}
    seeded = None
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            for path in shape_files(shapes):
                conn.execute(path.read_text())
            variant_sql = uid_sql(uid_variant)
            if variant_sql:
                conn.execute(variant_sql)
            for statement in extra_sql:
                conn.execute(statement)
            phases["baseline"] = round(time.monotonic() - started, 2)
            if users:
                seeded = seed_target(conn, users=users, reports=reports, seed=seed, analyze=analyze, vacuum=vacuum)
                phases["seed"] = seeded.pop("seconds")
            if roles:
                with _roles_lock(server, roles):
                    ensure_platform_roles(server, roles)
                    with conn.transaction():
                        for platform_statement in _platform_statements(name, roles):
                            conn.execute(platform_statement)
    except BaseException:
        with _admin(server) as conn:
            _drop_database(conn, name)
        raise
    info = {"zoo": 1, "shapes": list(shapes), "uid_variant": uid_variant, "users": users, "reports": reports,
            "seed": seeded, "roles": asdict(roles) if roles else None, "phases": phases,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.monotonic() - started, 2)}
    _describe(server, name, info)
    return _built(server, name, info)


def _describe(server: str, name: str, info: dict) -> None:
    with _admin(server) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name),
                                                                    sql.Literal(json.dumps(info))))


def database_info(server: str, name: str) -> dict:
    """What the build recorded in the database's comment ({} for a database the zoo did not build)."""
    with _admin(server) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (name,)).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else {}
    except ValueError:
        return {}


def _built(server: str, name: str, info: dict) -> BuiltTarget:
    roles = PlatformRoles(**info["roles"]) if info.get("roles") else None
    return BuiltTarget(
        name=name, dsn=database_dsn(server, name, roles.migration if roles else None),
        admin_dsn=database_dsn(server, name), shapes=tuple(info.get("shapes") or ("baseline",)),
        uid_variant=info.get("uid_variant") or DEFAULT_UID_VARIANT, roles=roles, seeded=info.get("seed"), info=info)


def describe_target(target: str, server: str | None = None) -> BuiltTarget:
    """The BuiltTarget of an existing database, from what its build recorded."""
    server, name = split_target(target, server)
    return _built(server, name, database_info(server, name))


def clone_target(template: str, name: str, server: str | None = None) -> BuiltTarget:
    """A fresh copy of ``template`` named ``name`` (replacing any), owned like the template."""
    server, template_name = split_target(template, server)
    with _admin(server) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                             (template_name,)).fetchone()
        if owner is None:
            raise ZooError(f"no template database {template_name}")
        _drop_database(conn, name)
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(template_name), sql.Identifier(owner[0]))
        for attempt in range(10):
            try:
                conn.execute(statement)
                break
            except psycopg.errors.ObjectInUse:  # a session still leaving the template
                if attempt == 9:
                    raise
                time.sleep(1)
    info = database_info(server, template_name)
    info["template"] = template_name
    return _built(server, name, info)


def drop_target(target: str, server: str | None = None, *, roles: bool = True) -> None:
    """Drop the database and, if it was a platform build, its roles once nothing else holds objects of theirs."""
    server, name = split_target(target, server)
    info = database_info(server, name)
    with _admin(server) as conn:
        _drop_database(conn, name)
    if roles and info.get("roles") and not info.get("template"):
        drop_platform_roles(server, PlatformRoles(**info["roles"]))


# --- templates shared by tests and benchmarks ---------------------------------------------------------------

def template_name(shapes, uid_variant, users: int, reports: int, seed: int = 42, extra_sql: Sequence[str] = (),
                  prefix: str = TEMPLATE_PREFIX) -> str:
    key = json.dumps([list(normalize_shapes(shapes)), check_uid_variant(uid_variant), users, reports, seed,
                      list(extra_sql), content_fingerprint()])
    return f"{prefix}{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def ensure_template(shapes: str | Iterable[str] = ("baseline",), uid_variant: str | None = None, *, users: int,
                    reports: int, seed: int = 42, extra_sql: Sequence[str] = (), prefix: str = TEMPLATE_PREFIX,
                    server: str | None = None) -> BuiltTarget:
    """A seeded template for this exact content, built once per server (advisory lock) and then reused.

    Platform roles are named after ``prefix`` (e.g. ``cp_tmpl_postgres``), not after the template: every
    template of a family shares them, so a DSN can be known before the template exists (test workers get
    their target DSNs when they start).
    """
    server = make_conninfo(server or DEFAULT_SERVER, dbname="postgres")
    name = template_name(shapes, uid_variant, users, reports, seed, extra_sql, prefix)
    built_now = False
    with _admin(server) as lock:
        lock.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        try:
            if not database_exists(server, name):
                built_now = True
                building = f"{name}_building"
                build_target(building, shapes, users, reports, uid_variant, seed=seed, replace=True,
                             role_prefix=prefix, extra_sql=extra_sql, server=server)
                info = {**database_info(server, building), "fingerprint": content_fingerprint()}
                with _admin(server) as conn:
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building),
                                                                               sql.Identifier(name)))
                _describe(server, name, info)
        finally:
            lock.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
    template = _built(server, name, database_info(server, name))
    template.info["built_now"] = built_now  # not stored: whether this call built it
    return template
