"""A run as a report a lead attaches to a change record: JSON, Markdown, CSV (step table).

Built only from stored data; secrets of the target (DSN, its password, the service key) are redacted from the
final text as a last line of defence, even though nothing upstream should carry them.
"""

import io
import json

from controlpanel.core import csvsafe
from controlpanel.runs.models import Run
from controlpanel.targets.connection import redact as redact_secrets
from controlpanel.targets.connection import secret_values
from controlpanel.targets.secrets import all_secret_values

from . import scorecards, timeline
from .models import Approval


def _iso(value):
    return value.isoformat() if value else None


def redact(text: str, target) -> str:
    return redact_secrets(text, secret_values(target) + all_secret_values())


def build_report(run: Run) -> dict:
    rows = timeline.step_rows(run)
    lines = scorecards.scorecard_lines(run)
    return {
        "run": run.pk,
        "target": run.target.name,
        "environment": run.target.environment,
        "status": run.status,
        "created_by": run.created_by.get_username(),
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "window": {"start": _iso(run.window_start), "end": _iso(run.window_end)},
        "bundle": {"digest": run.checksum_digest, "checksums": run.checksums},
        "scorecard": {"summary": scorecards.summarize(lines), "lines": lines},
        "approvals": [
            {"action": a.action, "decision": a.decision, "requested_by": a.requested_by.get_username(),
             "decided_by": a.approved_by.get_username() if a.approved_by else None,
             "decided_at": _iso(a.decided_at), "checksums_match": a.checksums == run.checksums, "reason": a.reason}
            for a in Approval.objects.filter(run=run).select_related("requested_by", "approved_by")
        ],
        "steps": [
            {
                "key": row["def"].key,
                "title": row["def"].title,
                "phase": row["phase"].key,
                "status": row["step"].status,
                "started_at": _iso(row["step"].started_at),
                "finished_at": _iso(row["step"].finished_at),
                "seconds": row["seconds"],
                "estimate_minutes": list(row["estimate"]),
                "against_estimate": row["verdict"],
                "attempts": len(row["attempts"]),
                "signed_off_by": row["step"].signed_off_by.get_username() if row["step"].signed_off_by else None,
                "sign_off_reason": row["step"].sign_off_reason,
                "last_error": row["attempts"][-1]["error"] if row["attempts"] else "",
                "figures": dict(row["attempts"][-1]["figures"]) if row["attempts"] else {},
            }
            for row in rows
        ],
    }


def as_json(run: Run) -> str:
    return redact(json.dumps(build_report(run), indent=2, default=str), run.target)


STEP_COLUMNS = ("key", "title", "phase", "status", "started_at", "finished_at", "seconds", "estimate_minutes",
                "against_estimate", "attempts", "signed_off_by", "last_error")


def steps_csv(run: Run) -> str:
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(STEP_COLUMNS)
    for step in build_report(run)["steps"]:
        values = dict(step, estimate_minutes="–".join(str(m) for m in step["estimate_minutes"]))
        writer.writerow(["" if values[c] is None else values[c] for c in STEP_COLUMNS])
    return redact(buffer.getvalue(), run.target)


def _cell(value) -> str:
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def as_markdown(run: Run) -> str:
    report = build_report(run)
    out = [
        f"# Migration run {report['run']} on {report['target']} ({report['environment']})",
        "",
        f"- Status: **{report['status']}**",
        f"- Created by {report['created_by']} at {report['created_at']}; finished {report['finished_at'] or '—'}",
        f"- Bundle digest `{report['bundle']['digest']}`",
        "",
        "## Bundle checksums",
        "",
        "| File | SHA-256 |",
        "|---|---|",
        *(f"| {_cell(name)} | `{digest}` |" for name, digest in sorted(report["bundle"]["checksums"].items())),
        "",
        "## Scorecard",
        "",
    ]
    card = report["scorecard"]
    s = card["summary"]
    out += [f"{s['met']} met, {s['not_met']} not met, {s['unknown']} unknown of {s['total']}: "
            f"**{s['verdict']}**", "", "| Criterion | Status | Evidence |", "|---|---|---|"]
    for line in card["lines"]:
        evidence = line["evidence"] if isinstance(line["evidence"], str) else json.dumps(line["evidence"], default=str)
        out.append(f"| {_cell(line['title'])} | {line['status']} | {_cell(evidence)} |")
    out += ["", "## Approvals", ""]
    if report["approvals"]:
        out += [f"- {a['action']}: {a['decision']} by {a['decided_by'] or '—'} (requested by {a['requested_by']}) "
                f"at {a['decided_at'] or '—'}; checksums match: {a['checksums_match']}; reason: {_cell(a['reason'])}"
                for a in report["approvals"]]
    else:
        out.append("_None._")
    out += ["", "## Steps", "", "| Step | Status | Took (s) | Estimate (min) | Attempts | Figures |",
            "|---|---|---|---|---|---|"]
    for step in report["steps"]:
        figures = "; ".join(f"{k}: {v}" for k, v in step["figures"].items())
        out.append(f"| {_cell(step['title'])} | {step['status']} | {_cell(step['seconds'])} | "
                   f"{step['estimate_minutes'][0]}–{step['estimate_minutes'][1]} {step['against_estimate']} | "
                   f"{step['attempts']} | {_cell(figures)} |")
    errors = [s for s in report["steps"] if s["last_error"]]
    if errors:
        out += ["", "## Errors", ""] + [f"- {_cell(s['title'])}: {_cell(s['last_error'])}" for s in errors]
    return redact("\n".join(out) + "\n", run.target)
