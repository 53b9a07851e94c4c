"""What every executor shares with the runner: the step context, the live-log sink and the failure verdicts."""

import threading
from dataclasses import dataclass, field

import psycopg

from controlpanel.runbook.definition import Step
from controlpanel.targets.models import Target

from ..models import Attempt, Run, StepEvent


class StepFailed(Exception):
    """An executor's verdict that the step failed; detail is shown on the step."""

    def __init__(self, message: str, **detail):
        super().__init__(message)
        self.detail = {"message": message, **detail}


class StepCancelled(Exception):
    """An executor stopped its work because the step was cancelled (e.g. a command killed mid-run)."""


class DbSink:
    """Writes events as StepEvent rows (the live log); remembers the current statement and lock retries."""

    def __init__(self, attempt: Attempt):
        self.attempt = attempt
        self.current = ""
        self.lock_retries = 0
        self.last_retry = ""

    def emit(self, kind: str, message: str, **data) -> None:
        if kind == "statement":
            self.current = message
        elif data.get("lock_retry") or (kind == "info" and message.startswith(("Lock timeout on", "Deadlock on"))):
            self.lock_retries += 1
            self.last_retry = message[:300]
        StepEvent.objects.create(attempt=self.attempt, kind=kind if kind in StepEvent.Kind.values else "info",
                                 message=message[:20000], data=data)


@dataclass
class StepContext:
    attempt: Attempt
    step: Step
    run: Run
    target: Target
    conn: psycopg.Connection  # the work connection
    sink: DbSink
    cancel_event: threading.Event
    params: dict = field(default_factory=dict)

    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()
