"""A run's full story for leads: steps with attempts and durations against the runbook, who did what when."""

from django.db.models import Q
from django.urls import NoReverseMatch, reverse

from controlpanel.core.models import AuditEvent
from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs.models import Attempt, ChecklistTick, Run, StepRun

from .models import Approval, Escalation

MAX_FIGURES = 20


def _seconds(start, end) -> float | None:
    if start and end and end >= start:
        return round((end - start).total_seconds(), 3)
    return None


def estimate_verdict(seconds: float | None, minutes: tuple[int, int]) -> str:
    if seconds is None:
        return ""
    if seconds > minutes[1] * 60:
        return "over"
    return "within"


def figures(result: dict) -> list[tuple[str, str]]:
    """Evidence figures of an attempt's result as (label, value) pairs, whatever the step kind produced."""
    out = []
    if not isinstance(result, dict):
        return out
    for query in result.get("queries") or []:
        rows = query.get("rows") or []
        if len(rows) == 1 and len(rows[0]) == 1:
            value = str(rows[0][0])
        else:
            value = f"{len(rows)} row(s)"
        out.append((str(query.get("label", "query")), value))
    categories = result.get("categories") or []
    if isinstance(categories, dict):
        categories = [{"category": name, "status": verdict} for name, verdict in categories.items()]
    for category in categories:
        if isinstance(category, dict):
            out.append((f"tests: {category.get('category')}", str(category.get("status"))))
    for check in result.get("checks") or []:
        out.append((f"check: {check.get('check')}", "ok" if check.get("ok") else "FAILED"))
    for key in ("statements", "rows", "lock_retries", "seconds", "size_bytes", "sha256"):
        if key in result and not isinstance(result[key], (dict, list)):
            out.append((key, str(result[key])))
    return out[:MAX_FIGURES]


def evidence_url(run: Run) -> str | None:
    """The evidence area's page for the run, once it exists."""
    for name in ("evidence:run", "evidence:detail"):
        try:
            return reverse(name, args=[run.pk])
        except NoReverseMatch:
            continue
    return None


def step_rows(run: Run) -> list[dict]:
    """One row per step of the run, in runbook order, with every attempt."""
    steps = {s.key: s for s in StepRun.objects.filter(run=run).select_related("signed_off_by")}
    attempts: dict[int, list[Attempt]] = {}
    for attempt in Attempt.objects.filter(step__run=run).select_related("requested_by").order_by("step_id", "number"):
        attempts.setdefault(attempt.step_id, []).append(attempt)
    ticks: dict[str, list[ChecklistTick]] = {}
    for tick in ChecklistTick.objects.filter(run=run).select_related("ticked_by").order_by("ticked_at"):
        ticks.setdefault(tick.step_key, []).append(tick)
    rows = []
    for step_def in RUNBOOK.all_steps():
        step = steps.get(step_def.key)
        if step is None:
            continue
        seconds = _seconds(step.started_at, step.finished_at)
        step_attempts = [
            {"attempt": a, "seconds": _seconds(a.started_at, a.finished_at), "figures": figures(a.result),
             "error": (a.error or {}).get("message", "") if isinstance(a.error, dict) else ""}
            for a in attempts.get(step.pk, [])
        ]
        rows.append({
            "def": step_def, "step": step, "phase": RUNBOOK.phase_of(step_def.key), "seconds": seconds,
            "estimate": step_def.minutes, "verdict": estimate_verdict(seconds, step_def.minutes),
            "attempts": step_attempts, "ticks": ticks.get(step_def.key, []),
        })
    return rows


def audit_events(run: Run):
    """Audit events about the run, its steps, approvals and escalations (index on object_type, object_id)."""
    step_ids = [str(pk) for pk in StepRun.objects.filter(run=run).values_list("pk", flat=True)]
    approval_ids = [str(pk) for pk in Approval.objects.filter(run=run).values_list("pk", flat=True)]
    escalation_ids = [str(pk) for pk in Escalation.objects.filter(run=run).values_list("pk", flat=True)]
    query = Q(object_type=Run._meta.label, object_id=str(run.pk)) | Q(object_type=StepRun._meta.label,
                                                                        object_id__in=step_ids)
    if approval_ids:
        query |= Q(object_type=Approval._meta.label, object_id__in=approval_ids)
    if escalation_ids:
        query |= Q(object_type=Escalation._meta.label, object_id__in=escalation_ids)
    return AuditEvent.objects.filter(query).order_by("at", "id")


def chronology(run: Run, rows: list[dict] | None = None) -> list[dict]:
    """Who did what when: the audit log plus what workers did (attempts starting and ending)."""
    rows = rows if rows is not None else step_rows(run)
    entries = [
        {"at": e.at, "who": e.username, "what": e.action, "step": e.detail.get("step", ""),
         "detail": {k: v for k, v in e.detail.items() if k not in ("run", "step")}}
        for e in audit_events(run)
    ]
    for row in rows:
        for item in row["attempts"]:
            attempt = item["attempt"]
            if attempt.started_at:
                entries.append({"at": attempt.started_at, "who": attempt.worker or "worker",
                                "what": f"attempt {attempt.number} started", "step": row["def"].key, "detail": {}})
            if attempt.finished_at:
                detail = {"error": item["error"]} if item["error"] else {}
                entries.append({"at": attempt.finished_at, "who": attempt.worker or "worker",
                                "what": f"attempt {attempt.number} {attempt.status}", "step": row["def"].key,
                                "detail": detail})
    entries.sort(key=lambda e: e["at"])
    return entries


# Durations further apart than this factor (and a few seconds) are a difference worth a lead's eye.
TIME_DIFFERENCE_FACTOR = 2.0


def _status(row) -> str | None:
    return row["step"].status if row else None


def _times_differ(ra, rb) -> bool:
    sa, sb = (ra or {}).get("seconds"), (rb or {}).get("seconds")
    if sa is None or sb is None:
        return False
    low, high = sorted((sa, sb))
    return high - low > 2 and high > TIME_DIFFERENCE_FACTOR * max(low, 0.1)


def compare(a: Run, b: Run) -> dict:
    """Two runs side by side (e.g. staging and production of the same checksums)."""
    from . import scorecards

    rows_a = {r["def"].key: r for r in step_rows(a)}
    rows_b = {r["def"].key: r for r in step_rows(b)}
    steps = []
    for step_def in RUNBOOK.all_steps():
        ra, rb = rows_a.get(step_def.key), rows_b.get(step_def.key)
        if ra is None and rb is None:
            continue
        fig_a = dict(ra["attempts"][-1]["figures"]) if ra and ra["attempts"] else {}
        fig_b = dict(rb["attempts"][-1]["figures"]) if rb and rb["attempts"] else {}
        steps.append({
            "def": step_def, "a": ra, "b": rb,
            "figures": [(label, fig_a.get(label, ""), fig_b.get(label, "")) for label in dict.fromkeys(
                [*fig_a, *fig_b])],
            "status_differs": _status(ra) != _status(rb),
            "time_differs": _times_differ(ra, rb),
        })
    card_a = scorecards.scorecard_lines(a)
    card_b = scorecards.scorecard_lines(b)
    findings = []
    if card_a is not None or card_b is not None:
        by_a = {line["title"]: line for line in card_a or []}
        by_b = {line["title"]: line for line in card_b or []}
        for title in dict.fromkeys([*by_a, *by_b]):
            line_a, line_b = by_a.get(title), by_b.get(title)
            findings.append({"title": title, "a": line_a, "b": line_b,
                             "differs": (line_a or {}).get("status") != (line_b or {}).get("status")})
    return {"a": a, "b": b, "same_checksums": a.checksums == b.checksums, "steps": steps, "findings": findings,
            "scorecard_available": card_a is not None or card_b is not None}
