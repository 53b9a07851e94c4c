"""Preflight: is this target ready for Step 1? A go / no-go list, each line with its evidence.

Runs in a Celery task or the CLI (it opens a target connection), never in a web request.
Each check is {"key", "title", "status": go|no-go|warn|unknown, "evidence", "detail"}; the report is
go when no check says no-go.
"""

from pathlib import Path

from django.conf import settings
from django.utils import timezone

from controlpanel.runbook.definition import RUNBOOK, STEP1
from controlpanel.runs.bundle import bundle_dir, checksums
from controlpanel.targets.connection import TargetUnavailable, target_connection
from controlpanel.targets.sqlscript import ScriptError, load_script
from controlpanel.targets.tenancy import OPTIONAL_TENANT_TABLES, TENANT_TABLES

from .bundle_preflight import bundle_checks
from .bundle_reader import analyse
from .lint import lint_bundle
from .locks import estimate_script
from .privileges import privilege_checks

GO, NO_GO, WARN, UNKNOWN = "go", "no-go", "warn", "unknown"

# The contract in DESIGN.md ("What a target looks like before the migration").
REQUIRED_TABLES = {
    "auth.users": ("id", "email"),
    "public.profiles": ("id",),
    "public.audit_reports": ("id", "user_id", "created_at"),
    "public.automation_jobs": ("id", "user_id", "audit_report_id", "status", "created_at"),
    "public.generated_automations": ("id", "job_id", "created_at"),
}
REQUIRED_FUNCTIONS = ("auth.uid()", "public.handle_updated_at()")
REQUIRED_ROLES = ("anon", "authenticated", "service_role")

LONG_TRANSACTION_SECONDS = getattr(settings, "SAFETY_LONG_TRANSACTION_SECONDS", 60)
MIN_FREE_CONNECTIONS = getattr(settings, "SAFETY_MIN_FREE_CONNECTIONS", 5)
MAX_REPLICATION_LAG_SECONDS = getattr(settings, "SAFETY_MAX_REPLICATION_LAG_SECONDS", 30)


def _check(key, title, status, evidence, **detail) -> dict:
    return {"key": key, "title": title, "status": status, "evidence": evidence, "detail": detail}


# --- the contract -------------------------------------------------------------------------------

def contract_checks(conn) -> list[dict]:
    """One line per required object; a missing one is named exactly."""
    checks = []
    has_auth = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth')").fetchone()[0]
    checks.append(_check("contract.schema.auth", "schema auth", GO if has_auth else NO_GO,
                         "present" if has_auth else "missing: schema auth"))
    for table, columns in REQUIRED_TABLES.items():
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
        if not exists:
            checks.append(_check(f"contract.table.{table}", f"table {table}", NO_GO, f"missing: table {table}"))
            continue
        present = {row[0] for row in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,)).fetchall()}
        missing = [c for c in columns if c not in present]
        checks.append(_check(
            f"contract.table.{table}", f"table {table}({', '.join(columns)})", NO_GO if missing else GO,
            f"missing column(s): {', '.join(f'{table}.{c}' for c in missing)}" if missing else "present",
        ))
    for function in REQUIRED_FUNCTIONS:
        exists = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (function,)).fetchone()[0]
        checks.append(_check(f"contract.function.{function}", f"function {function}", GO if exists else NO_GO,
                             "present" if exists else f"missing: function {function}"))
    roles = dict(conn.execute("SELECT rolname, rolbypassrls FROM pg_roles WHERE rolname = ANY(%s)",
                              (list(REQUIRED_ROLES),)).fetchall())
    for role in REQUIRED_ROLES:
        if role not in roles:
            checks.append(_check(f"contract.role.{role}", f"role {role}", NO_GO, f"missing: role {role}"))
        elif role == "service_role" and not roles[role]:
            checks.append(_check("contract.role.service_role", "role service_role with BYPASSRLS", NO_GO,
                                 "role service_role exists but lacks BYPASSRLS"))
        else:
            suffix = " with BYPASSRLS" if role == "service_role" else ""
            checks.append(_check(f"contract.role.{role}", f"role {role}{suffix}", GO, "present" + suffix))
    return checks


def missing_objects(checks: list[dict]) -> list[str]:
    return [c["evidence"] for c in checks if c["key"].startswith("contract.") and c["status"] == NO_GO]


# --- what the target is doing right now -----------------------------------------------------------

def _tenant_oids(conn) -> list[int]:
    names = [f"public.{t}" for t in TENANT_TABLES + OPTIONAL_TENANT_TABLES]
    rows = conn.execute("SELECT to_regclass(n)::oid FROM unnest(%s::text[]) n", (names,)).fetchall()
    return [r[0] for r in rows if r[0]]


def session_checks(conn) -> list[dict]:
    oids = _tenant_oids(conn)
    rows = conn.execute(
        """
        SELECT a.pid, a.usename, a.application_name, a.state,
               extract(epoch FROM now() - a.xact_start)::float8 AS xact_seconds,
               left(a.query, 160),
               array_agg(DISTINCT c.relname ORDER BY c.relname) AS tables
        FROM pg_stat_activity a
        JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation'
        JOIN pg_class c ON c.oid = l.relation
        WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
          AND a.xact_start IS NOT NULL AND l.relation = ANY(%s)
          AND (a.state LIKE 'idle in transaction%%' OR now() - a.xact_start > make_interval(secs => %s))
        GROUP BY a.pid, a.usename, a.application_name, a.state, a.xact_start, a.query
        ORDER BY a.xact_start
        """,
        (oids, LONG_TRANSACTION_SECONDS),
    ).fetchall()
    sessions = [{"pid": pid, "user": user, "application": app, "state": state, "transaction_seconds": round(s or 0, 1),
                 "query": query, "tables": list(tables)} for pid, user, app, state, s, query, tables in rows]
    blocking = [s for s in sessions if s["transaction_seconds"] >= LONG_TRANSACTION_SECONDS
                or s["state"].startswith("idle in transaction")]
    evidence = (f"{len(blocking)} session(s) hold locks on tenant tables in an open transaction "
                f"(long-running ≥ {LONG_TRANSACTION_SECONDS}s or idle in transaction): "
                + "; ".join(f"pid {s['pid']} {s['state']} {s['transaction_seconds']}s on {', '.join(s['tables'])}"
                            for s in blocking)) if blocking else (
        f"no long-running (≥ {LONG_TRANSACTION_SECONDS}s) or idle-in-transaction session touches a tenant table")
    checks = [_check("ops.sessions", "Long-running / idle-in-transaction sessions on tenant tables",
                     NO_GO if blocking else GO, evidence, sessions=sessions)]

    vacuums = conn.execute(
        """
        SELECT p.pid, c.relname, p.phase, a.query LIKE '%%to prevent wraparound%%'
        FROM pg_stat_progress_vacuum p
        JOIN pg_class c ON c.oid = p.relid
        JOIN pg_stat_activity a ON a.pid = p.pid
        WHERE p.datname = current_database() AND p.relid = ANY(%s)
        """,
        (oids,),
    ).fetchall()
    wraparound = [v for v in vacuums if v[3]]
    if wraparound:
        status, evidence = NO_GO, ("anti-wraparound autovacuum running on "
                                   + ", ".join(v[1] for v in wraparound) + " (it does not yield to DDL)")
    elif vacuums:
        status, evidence = WARN, ("vacuum running on " + ", ".join(f"{v[1]} ({v[2]})" for v in vacuums)
                                  + "; autovacuum yields to the migration's locks, a manual VACUUM does not")
    else:
        status, evidence = GO, "no vacuum running on the tenant tables (pg_stat_progress_vacuum)"
    checks.append(_check("ops.autovacuum", "Autovacuum on tenant tables", status, evidence,
                         vacuums=[{"pid": p, "table": t, "phase": ph, "wraparound": w} for p, t, ph, w in vacuums]))
    return checks


def connection_check(conn) -> dict:
    max_conn, reserved, used = conn.execute(
        """
        SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
        """
    ).fetchone()
    available = max_conn - reserved - used
    # A step holds 2 connections (work + lock/heartbeat); leave room for the application too.
    status = NO_GO if available < MIN_FREE_CONNECTIONS else WARN if available < max(10, max_conn // 10) else GO
    return _check("ops.connections", "Connection headroom", status,
                  f"{used} client connections of max_connections {max_conn} ({reserved} reserved for superusers): "
                  f"{available} free; a step needs 2", max_connections=max_conn, reserved=reserved, used=used,
                  free=available)


def growth_check(conn) -> dict:
    """Estimate growth from table sizes; the free disk space itself is not visible from SQL."""
    rows = conn.execute(
        """
        SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid)
        FROM pg_class c WHERE c.oid = ANY(%s) ORDER BY c.relname
        """,
        (_tenant_oids(conn),),
    ).fetchall()
    database_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    tables, growth = [], 0
    for name, tuples, table_bytes, index_bytes in rows:
        # organization_id uuid (16 bytes + alignment) per row, one b-tree on it (~40 bytes per entry),
        # and the dead row versions of one backfill slice (1/32 of the table) before VACUUM reclaims them.
        estimate = tuples * 24 + tuples * 40 + table_bytes // 32
        growth += estimate
        tables.append({"table": name, "rows_estimate": tuples, "table_bytes": table_bytes,
                       "index_bytes": index_bytes, "growth_bytes": estimate})
    percent = round(100 * growth / database_bytes, 1) if database_bytes else 0.0
    return _check(
        "ops.disk", "Free disk against expected growth", UNKNOWN if percent <= 10 else WARN,
        f"expected growth ≈ {growth / 1e6:.1f} MB ({percent}% of the database's {database_bytes / 1e6:.1f} MB). "
        "Measured: table, index and database sizes. Not measurable from SQL: free space on the server's disk "
        "— check it on the host or the provider's dashboard (needs at least the expected growth plus WAL).",
        growth_bytes=growth, database_bytes=database_bytes, percent=percent, tables=tables,
    )


def replication_check(conn) -> dict:
    rows = conn.execute(
        """
        SELECT application_name, state, extract(epoch FROM replay_lag)::float8,
               pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)
        FROM pg_stat_replication
        """
    ).fetchall()
    if not rows:
        return _check("ops.replication", "Replication lag", GO,
                      "no replicas attached (pg_stat_replication is empty)", replicas=[])
    replicas = [{"name": n, "state": s, "lag_seconds": lag, "lag_bytes": int(b) if b is not None else None}
                for n, s, lag, b in rows]
    unknown = [r for r in replicas if r["lag_seconds"] is None and r["lag_bytes"] is None]
    behind = [r for r in replicas if (r["lag_seconds"] or 0) > MAX_REPLICATION_LAG_SECONDS]
    status = NO_GO if behind else UNKNOWN if unknown else GO
    evidence = "; ".join(f"{r['name'] or '?'} {r['state']} lag {r['lag_seconds']}s / {r['lag_bytes']} bytes"
                         for r in replicas)
    if unknown:
        evidence += " (lag not visible to this role: needs pg_monitor)"
    return _check("ops.replication", "Replication lag", status, evidence, replicas=replicas)


# --- lock impact of Step 1 -------------------------------------------------------------------------

def lock_impact(conn, directory: Path) -> tuple[list[dict], list[dict]]:
    """(entries per statement with table rows and size, parse errors)."""
    entries, errors, scripts = [], [], []
    for step in STEP1.steps:
        try:
            scripts.append(load_script(directory / step.bundle_file))
            entries += estimate_script(scripts[-1])
        except (ScriptError, OSError) as exc:
            errors.append(getattr(exc, "detail", {"message": str(exc), "file": step.file}))
    created = analyse(scripts)
    tables = sorted({lock["table"] for entry in entries for lock in entry["locks"]})
    stats = {}
    if tables:
        for name, tuples, size in conn.execute(
            """
            SELECT n, greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
            FROM unnest(%s::text[]) n JOIN pg_class c ON c.oid = to_regclass(n)
            """,
            (tables,),
        ).fetchall():
            stats[name] = {"rows_estimate": tuples, "bytes": size}
    for entry in entries:
        for lock in entry["locks"]:
            if lock["table"] in stats:
                lock.update(stats[lock["table"]])
                continue
            # Not on the target: a TEMP table, one the bundle creates, or one that is missing (a NO-GO of
            # bundle.references names it with its line).
            schema, _, name = lock["table"].partition(".")
            state = ("temp" if schema == "pg_temp" else "new" if created.is_created(schema, name) else "missing")
            lock.update({"rows_estimate": None, "bytes": None, state: True})
    return entries, errors


# --- the report ------------------------------------------------------------------------------------

def run_preflight(target, directory: Path | None = None) -> dict:
    directory = bundle_dir(directory)
    report = {"target": target.name, "environment": target.environment, "bundle_dir": str(directory),
              "started_at": timezone.now().isoformat(), "checks": [], "lint": None, "locks": []}
    try:
        report["checksums"] = checksums(directory)
    except FileNotFoundError as exc:
        report["checks"] = [_check("bundle.files", "Bundle files present", NO_GO, str(exc))]
        report.update(go=False, missing=[], finished_at=timezone.now().isoformat())
        return report
    lint = lint_bundle(directory)
    report["lint"] = lint
    lint_status = UNKNOWN if not lint["ran"] else WARN if lint["count"] else GO
    lint_check = _check("lint.squawk", "squawk lint of the bundle", lint_status,
                        lint["error"] or f"{lint['count']} finding(s)")
    try:
        with target_connection(target, application_name="controlpanel-preflight") as conn:
            conn.execute("SET statement_timeout = '30s'")
            checks = contract_checks(conn)
            checks += session_checks(conn)
            checks += [connection_check(conn), growth_check(conn), replication_check(conn)]
            report["locks"], parse_errors = lock_impact(conn, directory)
            if not parse_errors:
                checks += bundle_checks(conn, directory, [step.bundle_file for step in STEP1.steps], report["locks"],
                                        lint, _check)
            checks += privilege_checks(conn, directory, [step.bundle_file for step in STEP1.steps]
                                       + [RUNBOOK.step("rollback.emergency").bundle_file], _check)
    except TargetUnavailable as exc:
        checks = [_check("target.reachable", "Target reachable", NO_GO, str(exc))]
        parse_errors = []
    for error in parse_errors:
        checks.append(_check("bundle.parse", f"{error.get('file')} parses", NO_GO, error.get("message", ""),
                             **error))
    checks.append(lint_check)
    report["checks"] = checks
    report["missing"] = missing_objects(checks)
    report["go"] = not any(c["status"] == NO_GO for c in checks)
    report["finished_at"] = timezone.now().isoformat()
    return report


def preflight_and_store(target, *, run=None, user=None, directory=None):
    from .models import PreflightReport

    data = run_preflight(target, Path(run.bundle_dir) if run and directory is None else directory)
    return PreflightReport.objects.create(target=target, run=run, requested_by=user, go=data["go"],
                                          checksums=data.get("checksums") or {}, data=data)
