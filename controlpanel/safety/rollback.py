"""Emergency rollback support: what it would delete, the pre-migration state, and the restored verdict.

The states compared are the evidence area's snapshots (``evidence.models.Snapshot``), taken in the worker
by its attempt_finished receiver: "before" when the data assessment succeeds, "after_rollback" when the
emergency rollback succeeds, both before the step shows as ended. The verdict is computed on read with
``evidence.reconcile.compare_restored``; nothing of it is stored here.
"""

import psycopg
from django.utils import timezone
from psycopg import sql

from controlpanel.evidence.models import Snapshot
from controlpanel.evidence.reconcile import compare_restored
from controlpanel.evidence.scorecard import pre_migration_snapshot
from controlpanel.runbook.definition import RUNBOOK
from controlpanel.targets.connection import TargetUnavailable, target_connection
from controlpanel.targets.tenancy import existing_tables, tenant_tables

from .models import RollbackPreparation

ROLLBACK_KEY = RUNBOOK.emergency_rollback_step().key
ORGANIZATION_LIST_LIMIT = 50
NO_BEFORE = ("No pre-migration state was recorded for this run (its data assessment did not succeed before "
             "Step 1): nothing to compare with.")


def after_rollback_snapshot(run, attempt=None) -> Snapshot | None:
    """The latest "after_rollback" snapshot of the run (of one rollback attempt when given)."""
    snapshots = Snapshot.objects.filter(run=run, label=Snapshot.Label.AFTER_ROLLBACK)
    if attempt is not None:
        snapshots = snapshots.filter(attempt=attempt)
    return snapshots.order_by("-taken_at", "-id").first()


def verdict(run, after: Snapshot | None = None) -> dict | None:
    """Was the pre-migration state restored? None when no after-rollback snapshot exists.

    ``restored`` is True / False, or None when there is no "before" to compare with (``message`` says so);
    ``counts`` maps each table to [before, after]; ``tables`` has the per-table rows of the comparison
    (``difference``, ``unchanged``, and the ids lost or added when they differ).
    """
    after = after or after_rollback_snapshot(run)
    if after is None:
        return None
    out = {"taken_at": after.taken_at, "after_snapshot": after.pk, "attempt": after.attempt_id}
    before = pre_migration_snapshot(run)
    if before is None:
        return out | {"restored": None, "message": NO_BEFORE}
    result = compare_restored(before.data, after.data)
    return out | {
        "restored": result["passed"],
        "fingerprint_restored": result["fingerprint_restored"],
        "fingerprint_diff": result["fingerprint_diff"],
        "counts_equal": result["counts_equal"],
        "rows_unchanged": result["rows_unchanged"],
        "counts": {r["table"]: [r["before"], r["after"]] for r in result["counts"]},
        "tables": result["counts"],
        "before_snapshot": before.pk,
        "before_taken_at": before.taken_at,
    }


def prepare(preparation: RollbackPreparation) -> RollbackPreparation:
    """Count what the emergency rollback would delete (organizations, memberships), in a task."""
    run = preparation.run
    try:
        with target_connection(run.target, application_name="controlpanel-rollback-prepare") as conn:
            present = existing_tables(conn, ("organizations", "organization_memberships"))
            counts: dict[str, object] = {}
            data: dict[str, object] = {"counts": counts, "organizations": [], "migrated": bool(present)}
            if "organizations" in present:
                counts["organizations"] = conn.execute(
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
                counts["memberships"] = conn.execute(
                    "SELECT count(*) FROM public.organization_memberships").fetchone()[0]
                counts["memberships_by_status"] = dict(conn.execute(
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
