"""Waiting for the real worker: poll the control DB until a condition holds, or fail naming what was awaited."""

import time

FINAL = ("succeeded", "failed", "cancelled", "interrupted", "paused", "pending")


def wait_until(predicate, timeout=60, what="condition", every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def wait_step(run, key, timeout=120, until=FINAL):
    """The step once it has left queued/running (a checklist verification ends back in pending)."""
    step = run.steps.get(key=key)
    wait_until(lambda: step.refresh_from_db() or step.status in until, timeout, f"{key} to finish ({step.status})",
               every=0.2)
    return step
