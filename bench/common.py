"""Shared pieces of the benchmarks: cached target templates, clones, psql, Django set-up, timing.

A target template is a seeded zoo target (controlpanel/targets/zoo.py: the same builder as the tests'
templates, keyed by shapes, auth.uid() variant, sizes and content), optionally migrated and distributed,
built ONCE per parameter set and named after those parameters plus a hash of the bundle, the zoo's files and
the seeder, so a change to any of them builds a new one. Benchmarks work on cheap clones
(CREATE DATABASE ... TEMPLATE ...).

Templates built by a process are dropped when it exits, unless BENCH_KEEP_TEMPLATES=1 (set by run_all.py,
which shares them between the benchmarks and drops them at the end). Server: BENCH_SERVER (a DSN without
a database; the legacy BENCH_PG / BENCH_SERVER_DSN are accepted too), else PGHOST/PGPORT/PGUSER, else
127.0.0.1:5432 as postgres.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from controlpanel.targets import zoo  # noqa: E402  (after the path set-up above)

# Benchmarks serve and call the panel over plain http on 127.0.0.1: no HTTPS redirect, a throwaway key
# (without DEBUG the settings refuse to start without one). Inherited by the servers and workers they start.
os.environ.setdefault("HTTPS", "0")
os.environ.setdefault("SECRET_KEY", "bench-" + uuid.uuid4().hex + uuid.uuid4().hex)

# Overridable so that a person sharing the server can keep benchmark databases under their own prefix.
TEMPLATE_PREFIX = os.environ.get("BENCH_TEMPLATE_PREFIX", "cp_bench_tmpl_")
KEEP_TEMPLATES_VAR = "BENCH_KEEP_TEMPLATES"
HEADLINE_FILE_VAR = "BENCH_HEADLINE_FILE"
FORWARD = ("20250904000001_add_multi_tenant_organizations.sql",
           "20250904000002_add_organization_rls_policies.sql",
           "20250904000003_migrate_existing_data_to_organizations.sql")


def _default_server() -> str:
    for var in ("BENCH_SERVER", "BENCH_PG", "BENCH_SERVER_DSN"):
        if os.environ.get(var):
            return os.environ[var]
    return make_conninfo(host=os.environ.get("PGHOST", "127.0.0.1"), port=os.environ.get("PGPORT", "5432"),
                         user=os.environ.get("PGUSER", "postgres"))


_server = _default_server()
_built_here: list[str] = []


def set_server(server: str) -> None:
    """Use another server (a DSN; its database name is ignored)."""
    global _server
    _server = server


def dsn(name: str) -> str:
    return make_conninfo(_server, dbname=name)


def bundle_dir() -> Path:
    return Path(os.environ.get("MIGRATION_BUNDLE_DIR") or ROOT / "migrations_sql")


# --- databases -----------------------------------------------------------------------------------------------

def admin() -> psycopg.Connection:
    return psycopg.connect(dsn("postgres"), autocommit=True)


def exists(name: str) -> bool:
    with admin() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def drop(name: str) -> None:
    """Drop a database; a zoo template's platform roles go with the last database that uses them."""
    zoo.drop_target(dsn(name))


def create(name: str) -> str:
    """A new empty database (dropped first if present); returns its DSN."""
    drop(name)
    with admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return dsn(name)


def clone(template: str, name: str) -> str:
    """A copy of ``template`` named ``name`` (replacing any); returns its DSN.

    FILE_COPY checkpoints before and after the copy, so the benchmark starts without a backlog of dirty pages.
    """
    drop(name)
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
        sql.Identifier(name), sql.Identifier(template))
    for attempt in range(10):
        try:
            with admin() as conn:
                conn.execute(statement)
            return dsn(name)
        except psycopg.errors.ObjectInUse:  # a session still leaving the template
            if attempt == 9:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


@contextmanager
def cloned(template: str, prefix: str, keep: bool = False) -> Iterator[tuple[str, str]]:
    """(name, dsn) of a fresh clone of ``template`` named ``<prefix>_<random>``; dropped afterwards unless keep."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    target_dsn = clone(template, name)
    print(f"clone of the template: {time.monotonic() - started:.1f} s", flush=True)
    try:
        yield name, target_dsn
    finally:
        if not keep:
            drop(name)


def psql_env(name: str, quiet: bool = True, user: str | None = None) -> dict:
    """os.environ plus PG* variables for database ``name`` (as ``user`` if given): no DSN in the argument list."""
    env = dict(os.environ)
    params = conninfo_to_dict(dsn(name))
    if user:
        params["user"] = user
    for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("password", "PGPASSWORD"),
                     ("dbname", "PGDATABASE"), ("sslmode", "PGSSLMODE")):
        value = params.get(key)
        if value:
            env[var] = str(value)
    if quiet:
        env["PGOPTIONS"] = "-c client_min_messages=warning"
    return env


def psql_file(name: str, path: Path, user: str | None = None) -> float:
    """Run one SQL file with `psql -v ON_ERROR_STOP=1 -f` on database ``name``; seconds taken."""
    started = time.perf_counter()
    done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                          env=psql_env(name, user=user),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"psql failed on {path.name}: {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - started


def apply_bundle(name: str, files: Iterable[str] = FORWARD, user: str | None = None) -> float:
    """The forward bundle applied with psql exactly as the runbook says; seconds taken."""
    return sum(psql_file(name, bundle_dir() / file, user) for file in files)


def database_size(name: str) -> int:
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


# --- cached target templates ---------------------------------------------------------------------------------

def _fingerprint() -> str:
    """Hash of what a migrated template adds to its zoo base: the bundle."""
    digest = hashlib.sha256()
    for path in sorted(bundle_dir().glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def template_name(users: int, reports: int, organizations: int | None = None, migrated: bool = True,
                  shapes: Iterable[str] = ("baseline",), uid_variant: str | None = None) -> str:
    base = zoo.template_name(shapes, uid_variant, users, reports, prefix=TEMPLATE_PREFIX)
    if not migrated:
        return base
    shape = f"o{organizations}" if organizations else "m"
    return f"{base}_{shape}_{_fingerprint()}"


def template_info(name: str) -> dict[str, Any]:
    """What the template's build recorded (seed counts, seconds per phase), plus cached: built by another run."""
    info = zoo.database_info(dsn("postgres"), name)
    info["cached"] = name not in _built_here
    return info


def _drop_built_templates() -> None:
    for name in reversed(_built_here):
        try:
            drop(name)
        except psycopg.Error as exc:  # never hide the benchmark's own result behind a clean-up failure
            print(f"could not drop template {name}: {exc}", file=sys.stderr)


def _built(name: str) -> None:
    _built_here.append(name)
    if len(_built_here) == 1 and not os.environ.get(KEEP_TEMPLATES_VAR):
        atexit.register(_drop_built_templates)


def target_template(users: int, reports: int, organizations: int | None = None, migrated: bool = True,
                    shapes: Iterable[str] = ("baseline",), uid_variant: str | None = None) -> str:
    """Name of a template database: the zoo target of ``shapes`` seeded with (users, reports), then the forward
    bundle if ``migrated`` (as the target's own connecting role), then distribute_into_organizations(organizations)
    if given. Built once; reused while its name matches."""
    if organizations and not migrated:
        raise ValueError("organizations need a migrated target")
    if not migrated:
        base = zoo.ensure_template(shapes, uid_variant, users=users, reports=reports, prefix=TEMPLATE_PREFIX,
                                   server=dsn("postgres"))
        print(f"target template {base.name}: {'built' if base.info['built_now'] else 'reused'}", flush=True)
        if base.info["built_now"]:
            _built(base.name)
        return base.name
    name = template_name(users, reports, organizations, migrated, shapes, uid_variant)
    with admin() as lock:
        lock.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))  # another process may be building it
        try:
            if exists(name):
                print(f"target template {name}: reused", flush=True)
                return name
            _build(name, users, reports, organizations, shapes, uid_variant)
        finally:
            lock.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
    return name


def _build(name: str, users: int, reports: int, organizations: int | None, shapes, uid_variant) -> None:
    from controlpanel.targets.seeding import distribute_into_organizations

    building = f"{name}_building"
    started = time.monotonic()
    info: dict[str, Any] = {"users": users, "reports": reports, "organizations": organizations,
                            "migrated": True, "built_at": datetime.now(UTC).isoformat(timespec="seconds")}
    print(f"target template {name}: building", flush=True)
    try:
        base = target_template(users, reports, migrated=False, shapes=shapes, uid_variant=uid_variant)
        base_info = template_info(base)
        info.update({key: base_info.get(key) for key in ("seed", "shapes", "uid_variant", "roles", "zoo")})
        phases = dict(base_info.get("phases", {}))
        clone_started = time.monotonic()
        copy = zoo.clone_target(dsn(base), building)
        phases["clone"] = round(time.monotonic() - clone_started, 2)
        phases["bundle"] = round(apply_bundle(building, user=copy.connect_role), 2)
        if organizations:
            info["distribute"] = distribute_into_organizations(dsn(building), organizations)
            phases["distribute"] = round(info["distribute"]["seconds"], 2)
        info["phases"] = phases
        info["build_seconds"] = round(time.monotonic() - started, 2)
        with admin() as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building),
                                                                       sql.Identifier(name)))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name),
                                                                        sql.Literal(json.dumps(info))))
    except BaseException:
        drop(building)
        raise
    _built(name)
    print(f"target template {name}: built in {info['build_seconds']:.1f} s "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in phases.items())})", flush=True)


def migrated_target(users: int, reports: int, organizations: int) -> str:
    """The migrated, distributed template, with the seed / bundle / spread figures of its build printed."""
    template = target_template(users, reports, organizations)
    info = template_info(template)
    phases, note = info.get("phases", {}), cached_note(info)
    report_seconds(f"seed {users:,} users / {reports:,} reports", phases.get("baseline", 0) + phases.get("seed", 0),
                   note=note)
    report_seconds("apply the bundle with psql", phases.get("bundle", 0), note=note)
    report_seconds(f"spread over {organizations:,} organizations", phases.get("distribute", 0), note=note)
    return template


def add_server_arguments(parser) -> None:
    """--server and --keep, applied by parse_server_arguments."""
    parser.add_argument("--server", help="server DSN (default: BENCH_SERVER, else PG* variables)")
    parser.add_argument("--keep", action="store_true", help="keep the cloned database afterwards")


def parse_server_arguments(parser):
    args = parser.parse_args()
    if args.server:
        set_server(args.server)
    return args


def bench_templates() -> list[str]:
    """Every benchmark template on the server (run_all.py drops these)."""
    with admin() as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
                            (TEMPLATE_PREFIX.replace("_", r"\_") + "%",)).fetchall()
    return [row[0] for row in rows]


# --- Django --------------------------------------------------------------------------------------------------

def setup_django(control_db: str | None = None) -> None:
    """django.setup() with the project's settings; ``control_db`` replaces the control database's name."""
    if control_db:
        os.environ["CONTROL_DB_NAME"] = control_db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
    import django

    django.setup()


def _control_admin() -> psycopg.Connection:
    """The control database's server (CONTROL_DB_* settings), maintenance database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                           dbname="postgres", autocommit=True)


@contextmanager
def control_database(name: str, keep: bool = False) -> Iterator[str]:
    """A fresh, empty control database ``name`` that Django uses (set up here); dropped afterwards unless keep.

    The caller migrates it (call_command("migrate")), so that it can time the migration with its data.
    """
    os.environ["CONTROL_DB_NAME"] = name  # before Django reads its settings
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with _control_admin() as conn:
        conn.execute(statement)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        setup_django(name)
        yield name
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            with _control_admin() as conn:
                conn.execute(statement)


# --- timing --------------------------------------------------------------------------------------------------

def timed(label: str, fn: Callable[[], Any], results: dict | None = None, width: int | None = None) -> Any:
    """Run fn, print how long it took (`label: 1.2 s`, or a column of `width` when given); fn's value."""
    started = time.monotonic()
    value = fn()
    report_seconds(label, time.monotonic() - started, results, width)
    return value


def report_seconds(label: str, seconds: float, results: dict | None = None, width: int | None = None,
                   note: str = "") -> None:
    if results is not None:
        results[label] = round(seconds, 2)
    if width:
        print(f"{label:<{width}} {seconds:>8.2f} s{note}", flush=True)
    else:
        print(f"{label}: {seconds:.1f} s{note}", flush=True)


def cached_note(info: dict) -> str:
    """Suffix for a set-up figure that comes from a template built earlier, not from this run."""
    return f" (cached template, built {info.get('built_at', '?')})" if info.get("cached") else ""


def percentiles(samples_ms: list[float], digits: int = 2, with_max: bool = True) -> dict:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    out = {"n": len(ordered), "p50_ms": round(statistics.median(ordered), digits), "p95_ms": round(p95, digits)}
    if with_max:
        out["max_ms"] = round(ordered[-1], digits)
    return out


def sample_ms(fn: Callable, args_list: Iterable[tuple]) -> dict:
    """Call fn once per argument tuple; percentiles of the durations in ms."""
    times = []
    for args in args_list:
        started = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def headline(bench: str, figure: str, value: str, goal: str = "", ok: bool | None = None) -> None:
    """Record one headline figure for run_all.py's summary (nothing happens when a bench runs alone)."""
    path = os.environ.get(HEADLINE_FILE_VAR)
    if not path:
        return
    with open(path, "a") as fh:
        fh.write(json.dumps({"bench": bench, "figure": figure, "value": value, "goal": goal, "ok": ok}) + "\n")
