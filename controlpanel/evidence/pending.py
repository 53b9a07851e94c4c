"""Evidence on its way: after Step 5 the collection is queued for the default worker. Until it has run, pages
and reports say "being collected since …" (a CI job can tell queued from could-not-measure), and
`runbook start --wait` waits for it.

The state is a StepEvent on the attempt that queued it (the log shows it too): queued → collecting → collected|failed.
"""

from django.utils import timezone

from controlpanel.runs.models import StepEvent

KEY = "evidence_collection"
QUEUED, COLLECTING, COLLECTED, FAILED = "queued", "collecting", "collected", "failed"
MESSAGES = {QUEUED: "Evidence: collection queued for the default worker.",
            COLLECTING: "Evidence: collection started.", COLLECTED: "Evidence: collection finished.",
            FAILED: "Evidence: collection failed (see the worker's log); lines stay not measured."}


def mark(attempt, state: str) -> None:
    StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.INFO, message=MESSAGES[state],
                             data={KEY: state})


def pending(run) -> dict | None:
    """{"state": queued|collecting, "since": datetime} while the run's evidence is on its way, else None."""
    latest = (StepEvent.objects.filter(attempt__step__run=run, data__has_key=KEY).order_by("-id")
              .values("data", "at").first())
    if latest is None or latest["data"][KEY] not in (QUEUED, COLLECTING):
        return None
    first = (StepEvent.objects.filter(attempt__step__run=run, data__has_key=KEY, data__contains={KEY: QUEUED})
             .order_by("-id").values_list("at", flat=True).first())
    return {"state": latest["data"][KEY], "since": first or latest["at"],
            "seconds": round((timezone.now() - (first or latest["at"])).total_seconds())}


def wait_until_collected(run, timeout: float, poll: float = 1.0) -> dict | None:
    """Wait for the run's queued evidence; returns what is still pending after the timeout (None: all in)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        state = pending(run)
        if state is None or time.monotonic() >= deadline:
            return state
        time.sleep(poll)
