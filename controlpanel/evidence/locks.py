"""The runbook's "No blocking locks during migration", judged from the lock samples of Step 1's attempts.

The runner samples pg_locks every second while a step runs (evidence/lockwatch.py); each attempt keeps a
summary in ``result["locks"]`` and every sample with waiters as a StepEvent of kind "locks". A session
waiting on the migration's locks for longer than the threshold is a blocking lock; so is the migration waiting
that long on another session (it then holds the locks it already took, and writers queue behind its request).
"""

from django.conf import settings

from controlpanel.runbook.definition import RUNBOOK

STEP1_KEYS = RUNBOOK.forward_keys()


def threshold_seconds() -> float:
    return settings.EVIDENCE_LOCK_WAIT_THRESHOLD_SECONDS


def judge_lock_samples(summaries: list[dict], threshold: float | None = None) -> dict:
    """Verdict over LockSummary.as_dict() summaries (or raw samples): no waiter blocked over the threshold."""
    threshold = threshold_seconds() if threshold is None else threshold
    longest, worst = 0.0, None
    migration_wait = 0.0
    blockers: list[dict] = []
    samples = with_waiters = retries = 0
    for summary in summaries:
        samples += summary.get("samples", 1)
        with_waiters += summary.get("samples_with_waiters", 1 if summary.get("blocked_by_migration") else 0)
        retries += int(summary.get("lock_retries") or 0)
        wait = float(summary.get("longest_wait_seconds") or 0)
        if wait > longest:
            longest, worst = wait, summary.get("worst_sample", summary)
        waited = float(summary.get("migration_wait_seconds") or 0)
        if waited > migration_wait:
            migration_wait = waited
            blockers = summary.get("migration_blockers") or summary.get("migration_waits_on") or []
    return {"threshold_seconds": threshold, "samples": samples, "samples_with_waiters": with_waiters,
            "longest_wait_seconds": round(longest, 3), "worst_sample": worst,
            "migration_wait_seconds": round(migration_wait, 1), "migration_blockers": blockers,
            "lock_retries": retries,
            "passed": longest <= threshold and migration_wait <= threshold}


def judge_run_locks(run) -> dict | None:
    """Across the run's Step 1 attempts; None when no Step 1 attempt has lock samples yet."""
    from controlpanel.runs.models import Attempt, StepEvent

    attempts = list(Attempt.objects.filter(step__run=run, step__key__in=STEP1_KEYS)
                    .exclude(result={}).select_related("step").order_by("step_id", "number"))
    summaries = [a.result["locks"] | {"attempt": f"{a.step.key} #{a.number}"} for a in attempts
                 if isinstance(a.result, dict) and a.result.get("locks")]
    events = StepEvent.objects.filter(attempt__step__run=run, attempt__step__key__in=STEP1_KEYS,
                                      kind=StepEvent.Kind.LOCKS).order_by("id")
    samples = [e.data for e in events[:500]]
    if not summaries and not samples:
        return None
    verdict = judge_lock_samples(summaries + [s | {"samples": 0, "samples_with_waiters": 0} for s in samples])
    verdict["attempts"] = [{"attempt": s["attempt"], "samples": s.get("samples"),
                            "samples_with_waiters": s.get("samples_with_waiters"),
                            "longest_wait_seconds": s.get("longest_wait_seconds")} for s in summaries]
    verdict["lock_events"] = events.count()
    return verdict
