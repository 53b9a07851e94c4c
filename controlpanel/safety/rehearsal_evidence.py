"""The evidence suite on the rehearsal's copy: a baseline before the forward files, the intermediate states
after each file, and everything after the last one. Returns typed verdicts (safety/verdicts.py).

Every collector is guarded: what crashes on another team's schema becomes a not-met verdict with its error.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import psycopg

from controlpanel.evidence.access import AccessMap, access_checkpoint
from controlpanel.evidence.impersonation import error_text
from controlpanel.evidence.probes import run_isolation_probes
from controlpanel.evidence.reconcile import reconcile, size_growth
from controlpanel.evidence.rls_audit import audit_rls, blocking
from controlpanel.evidence.snapshots import collect_snapshot
from controlpanel.evidence.timing import measure_sla
from controlpanel.targets import contents, tenancy
from controlpanel.targets.connection import connect

from . import verdicts as v

APP = "controlpanel-rehearsal-evidence"
FINAL = "after the forward files"
# Users re-measured by the access diff in the intermediate states (the final state re-measures every sampled
# subject): the states between files are short-lived, the question is only "does a file expose rows until the
# next one has run", which the heaviest and lightest users answer as well as all of them.
INTERMEDIATE_USERS = 20


@dataclass
class Baseline:
    snapshot: dict = field(default_factory=dict)
    digests: dict = field(default_factory=dict)
    relfilenodes: dict = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)  # pre-existing public tables and auth.users
    legacy_users: list[str] = field(default_factory=list)
    writer_table: str | None = None
    writer_columns: list[str] = field(default_factory=list)
    tenant_rows: int = 0
    access: AccessMap | None = None
    access_error: str = ""
    error: str = ""


def take_baseline(copy_target) -> Baseline:
    """Before the forward files: snapshot, row digests, relfilenodes, the legacy users."""
    base = Baseline()
    try:
        with connect(copy_target, application_name=APP) as conn:
            base.snapshot = collect_snapshot(conn)
            shapes = contents.table_shapes(conn)
            base.tables = [s.table for s in shapes]
            base.digests = contents.save_row_digests(conn, shapes)
            base.relfilenodes = contents.relfilenodes(conn, base.tables)
            base.legacy_users = [r[0] for r in conn.execute("SELECT id::text FROM auth.users ORDER BY id")]
            base.tenant_rows = sum(n for t, n in base.snapshot["counts"].items() if t.startswith("public."))
            try:  # a bundle-independent measure, but guarded apart: without it the other evidence still stands
                base.access = access_checkpoint(conn, connect=_more_sessions(copy_target)).map
            except psycopg.Error as exc:
                base.access_error = error_text(exc)
            # The old app's busiest table with an owner column: where its writes go.
            owned = [s for s in shapes if s.table.startswith("public.") and "user_id" in s.columns and s.primary_key]
            if owned:
                busiest = max(owned, key=lambda s: base.snapshot["counts"].get(s.table, 0))
                base.writer_table, base.writer_columns = busiest.table, list(busiest.columns)
    except psycopg.Error as exc:
        base.error = error_text(exc)
    return base


def rows_written(copy_target, tables, xid: int) -> int:
    with connect(copy_target, application_name=APP) as conn:
        return contents.rows_written_since(conn, tables, xid)


def relfilenodes(copy_target, tables) -> dict:
    with connect(copy_target, application_name=APP) as conn:
        return contents.relfilenodes(conn, tables)


def _probes(conn, stage: str, final: bool) -> v.Verdict:
    try:
        matrix = run_isolation_probes(conn)
    except psycopg.Error as exc:
        return v.judge_probes(stage, None, final=final, error=error_text(exc))
    data = matrix.as_dict()
    if not final and (data["setup"] or {}).get("error") == "the target has no organizations: run the migration first":
        return v.judge_check("probes", "Isolation probes: no user reaches or writes another organization's rows",
                             True, "no organizations yet: nothing to probe in this state", stage)
    return v.judge_probes(stage, data, final=final)


def _subset(access: AccessMap, users: int) -> AccessMap:
    """The before map for the roles and `users` sampled users taken in turn from each stratum."""
    strata: dict[str, list] = {}
    for subject in access.subjects:
        if subject.user_id:
            strata.setdefault(subject.stratum, []).append(subject)
    picked = [s for group in itertools.zip_longest(*strata.values()) for s in group if s is not None][:users]
    keep = [s for s in access.subjects if s.user_id is None] + picked
    keys = {s.key for s in keep}
    return AccessMap(schemas=access.schemas, subjects=keep, relations=access.relations,
                     cells=[c for c in access.cells if c.subject in keys], error=access.error)


def _more_sessions(copy_target):
    """Opens further connections to the copy: the access map probes users side by side."""
    return lambda: connect(copy_target, application_name=APP)


def _access(conn, stage: str, before: AccessMap | None, final: bool, copy_target) -> v.Verdict:
    if before is None:
        return v.judge_access(stage, None, final=final, error="no access map was taken before the forward files")
    if before.error:
        return v.judge_access(stage, None, final=final,
                              error=f"the map before the forward files failed: {before.error}")
    try:
        diff = access_checkpoint(conn, before, connect=_more_sessions(copy_target)).diff
    except psycopg.Error as exc:
        return v.judge_access(stage, None, final=final, error=error_text(exc))
    return v.judge_access(stage, diff, final=final)


def intermediate(copy_target, stage: str, base: Baseline) -> list[v.Verdict]:
    """After a forward file that is not the last: a policy of one file can expose rows until the next has run."""
    subset = _subset(base.access, INTERMEDIATE_USERS) if base.access else None
    with connect(copy_target, application_name=APP) as conn:
        return [_access(conn, stage, subset, final=False, copy_target=copy_target), _probes(conn, stage, final=False)]


def _guard(key: str, criterion: str, fn) -> v.Verdict:
    try:
        return fn()
    except (psycopg.Error, KeyError, ValueError) as exc:
        text = error_text(exc) if isinstance(exc, psycopg.Error) else f"{type(exc).__name__}: {exc}"
        return v.judge_check(key, criterion, False, f"the check could not run: {text}")


def final(copy_target, base: Baseline, manifest, budget_percent: float, sla_ms: float) -> tuple[list[v.Verdict], dict]:
    """After the last forward file: every criterion; returns the verdicts and the evidence for the report."""
    out: list[v.Verdict] = []
    evidence: dict = {}
    with connect(copy_target, application_name=APP) as conn:
        after = collect_snapshot(conn)

        def recon():
            result = reconcile(base.snapshot, after)
            evidence["reconciliation"] = {"passed": result["passed"], "checks": [
                {"check": c["check"], "passed": c["passed"]} for c in result["checks"]]}
            failed = [c["check"] for c in result["checks"] if not c["passed"]]
            return v.judge_check("reconciliation", "No row lost; every row and user in an organization",
                                 result["passed"], "failed: " + "; ".join(failed) if failed else "", **evidence)
        out.append(_guard("reconciliation", "No row lost; every row and user in an organization", recon))

        def compare():
            result = contents.compare_row_digests(conn, base.digests)
            return v.judge_contents(result, base.digests.get("skipped", {}))
        out.append(_guard("contents", "Row contents unchanged", compare))

        def roles():
            if manifest.legacy_users == "none":
                return v.judge_check("role_model", "Migrated memberships match the bundle's promise", True,
                                     "the manifest promises no membership model")
            result = tenancy.legacy_role_model(conn, manifest, base.legacy_users)
            return v.judge_role_model(result, manifest.legacy_users)
        out.append(_guard("role_model", "Migrated memberships match the bundle's promise", roles))

        def rls():
            findings = audit_rls(conn)
            bad = blocking(findings)
            return v.judge_check("rls_audit", "RLS audit: no critical or high finding", not bad,
                                 "; ".join(f"{f.severity} {f.code} {f.object}" for f in bad[:5]),
                                 findings=[f.as_dict() for f in bad[:20]])
        out.append(_guard("rls_audit", "RLS audit", rls))
        out.append(_guard("access", "Access diff", lambda: _access(conn, FINAL, base.access, final=True,
                                                                     copy_target=copy_target)
                          if base.access else v.judge_access(FINAL, None, final=True, error=base.access_error)))
        out.append(_guard("probes", "Isolation probes", lambda: _probes(conn, FINAL, final=True)))

        def sla():
            result = measure_sla(conn, sla_ms=sla_ms)
            slow = [f"{o['key']}: {o['error'] or str(o['worst_ms']) + ' ms'}" for o in result.get("operations", [])
                    if not o["passed"]]
            message = result.get("error") or "; ".join(slow)
            return v.judge_check("sla", f"Typical operations as a member under {sla_ms:.0f} ms", result["passed"],
                                 message, operations=result.get("operations", []))
        out.append(_guard("sla", "Typical operations under the SLA", sla))
        out.append(_guard("workers", "Workers can access organization context", lambda: _workers(conn)))

        def size():
            growth = size_growth(base.snapshot, after, budget_percent)
            evidence["size"] = growth
            return v.judge_check("size", f"Growth of the tenant data beyond the added columns under {budget_percent}%",
                                 growth["passed"], growth["summary"], growth=growth)
        out.append(_guard("size", "Database size increase is reasonable", size))
    return out, evidence


def _workers(conn) -> v.Verdict:
    from controlpanel.runs.executors.workers import workers_checks

    results = workers_checks(conn)
    bad = [f"{r['check']}: {r['detail']}" for r in results if not r["ok"]]
    return v.judge_check("workers", "Workers can access organization context (as service_role)", not bad,
                         "; ".join(bad), checks=results)


def drop_digests(copy_target) -> None:
    with connect(copy_target, application_name=APP) as conn:
        contents.drop_row_digests(conn)
