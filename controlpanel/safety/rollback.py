"""Emergency rollback support: what it would delete, the pre-migration state, and the restored verdict.

No evidence-area snapshot exists to compare with, so this area takes its own: a "before" fingerprint
and counts when a run's data assessment succeeds (the last step before Step 1 touches the schema), and
an "after_rollback" one when the emergency rollback succeeds; the verdict compares the two. Both are
taken in the worker, from an attempt_finished receiver.
"""

import logging

import psycopg
from django.utils import timezone
from psycopg import sql

from controlpanel.runs.models import Attempt, StepRun
from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts
from controlpanel.targets.connection import TargetUnavailable, target_connection
from controlpanel.targets.tenancy import existing_tables, tenant_tables

from .models import RollbackPreparation, StateSnapshot

log = logging.getLogger(__name__)
ROLLBACK_KEY = "rollback.emergency"
BEFORE_KEY = "pre.assessment"
ORGANIZATION_LIST_LIMIT = 50


def take_state(target) -> tuple[dict, dict]:
    with target_connection(target, application_name="controlpanel-safety-snapshot") as conn:
        tables = ["auth.users"] + [f"public.{t}" for t in tenant_tables(conn)]
        return schema_fingerprint(conn), table_counts(conn, tables)


def compare(before: StateSnapshot, fingerprint: dict, counts: dict) -> dict:
    diff = diff_fingerprints(_as_tuples(before.fingerprint), _as_tuples(fingerprint))
    tables = {t: [before.counts.get(t), counts.get(t)] for t in sorted(set(before.counts) | set(counts))}
    counts_equal = all(b == a for b, a in tables.values())
    return {"restored": not diff and counts_equal, "fingerprint_restored": not diff, "fingerprint_diff": diff,
            "counts_equal": counts_equal, "counts": tables, "before_snapshot": before.pk,
            "before_taken_at": before.created_at.isoformat()}


def _as_tuples(fingerprint: dict) -> dict:
    """JSON turns the fingerprint's tuples into lists; compare like with like."""
    def fix(value):
        return tuple(fix(v) for v in value) if isinstance(value, list) else value

    return {key: sorted(fix(row) for row in rows) for key, rows in fingerprint.items()}


def before_snapshot(run) -> StateSnapshot | None:
    return StateSnapshot.objects.filter(run=run, label=StateSnapshot.BEFORE).order_by("-created_at").first()


def latest_verdict(run) -> StateSnapshot | None:
    return StateSnapshot.objects.filter(run=run, label=StateSnapshot.AFTER_ROLLBACK).order_by("-created_at").first()


def on_attempt_finished(sender, attempt: Attempt, **kwargs) -> None:
    """Worker side: take the before / after_rollback states of the run's target."""
    if attempt.status != StepRun.Status.SUCCEEDED:
        return
    key = attempt.step.key
    run = attempt.step.run
    try:
        if key == BEFORE_KEY:
            started_step1 = Attempt.objects.filter(step__run=run, step__key__startswith="step1.").exists()
            if not started_step1:
                fingerprint, counts = take_state(run.target)
                StateSnapshot.objects.filter(run=run, label=StateSnapshot.BEFORE).delete()
                StateSnapshot.objects.create(run=run, label=StateSnapshot.BEFORE, attempt=attempt,
                                             fingerprint=fingerprint, counts=counts)
        elif key == ROLLBACK_KEY:
            fingerprint, counts = take_state(run.target)
            before = before_snapshot(run)
            verdict = compare(before, fingerprint, counts) if before else {
                "restored": None, "message": "No pre-migration state was recorded for this run (its data "
                                             "assessment did not succeed before Step 1): nothing to compare with."}
            StateSnapshot.objects.create(run=run, label=StateSnapshot.AFTER_ROLLBACK, attempt=attempt,
                                         fingerprint=fingerprint, counts=counts, verdict=verdict)
    except (TargetUnavailable, psycopg.Error):
        log.exception("safety snapshot of run %s after %s failed", run.pk, key)


def prepare(preparation: RollbackPreparation) -> RollbackPreparation:
    """Count what the emergency rollback would delete (organizations, memberships), in a task."""
    run = preparation.run
    try:
        with target_connection(run.target, application_name="controlpanel-rollback-prepare") as conn:
            present = existing_tables(conn, ("organizations", "organization_memberships"))
            data = {"counts": {}, "organizations": [], "migrated": bool(present)}
            if "organizations" in present:
                data["counts"]["organizations"] = conn.execute(
                    "SELECT count(*) FROM public.organizations").fetchone()[0]
                data["organizations"] = [
                    {"name": name, "slug": slug, "is_default": default, "members": members}
                    for name, slug, default, members in conn.execute(
                        """
                        SELECT o.name, o.slug, o.is_default,
                               (SELECT count(*) FROM public.organization_memberships m WHERE m.organization_id = o.id)
                        FROM public.organizations o ORDER BY o.is_default DESC, o.name LIMIT %s
                        """, (ORGANIZATION_LIST_LIMIT,)).fetchall()
                ] if "organization_memberships" in present else []
            if "organization_memberships" in present:
                data["counts"]["memberships"] = conn.execute(
                    "SELECT count(*) FROM public.organization_memberships").fetchone()[0]
                data["counts"]["memberships_by_status"] = dict(conn.execute(
                    "SELECT status, count(*) FROM public.organization_memberships GROUP BY status ORDER BY status"
                ).fetchall())
            tables = tenant_tables(conn)
            data["rows_with_organization"] = {
                t: conn.execute(sql.SQL("SELECT count(*) FROM public.{} WHERE organization_id IS NOT NULL")
                                .format(sql.Identifier(t))).fetchone()[0]
                for t in tables
                if conn.execute("SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass "
                                "AND attname = 'organization_id' AND NOT attisdropped)", (f"public.{t}",)).fetchone()[0]
            }
    except (TargetUnavailable, psycopg.Error) as exc:
        data = {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    preparation.data = data
    preparation.finished_at = timezone.now()
    preparation.save(update_fields=["data", "finished_at"])
    return preparation


def verdict_dict(snapshot: StateSnapshot | None) -> dict:
    if snapshot is None:
        return {"restored": None, "message": "no after-rollback state recorded"}
    return {"taken_at": snapshot.created_at.isoformat(), **snapshot.verdict}
