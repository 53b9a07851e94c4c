"""The evidence area's scorecard (`controlpanel.evidence.scorecard.build_scorecard`) as history and exports
show it: title, status (met / not_met / unknown for "not yet measured") and evidence."""

import logging

from controlpanel.evidence.scorecard import build_scorecard

log = logging.getLogger(__name__)


def scorecard_lines(run) -> list[dict]:
    try:
        lines = build_scorecard(run)
    except Exception as exc:  # a broken scorecard must not break history or exports; say so instead
        log.warning("scorecard of run %s failed: %s", run.pk, type(exc).__name__)
        return [{"title": "Scorecard could not be computed", "status": "unknown", "evidence": type(exc).__name__}]
    return [
        {"title": line["criterion"],
         "status": line["status"] if line["status"] in ("met", "not_met") else "unknown",
         "evidence": line["evidence"]}
        for line in lines
    ]


def summarize(lines: list[dict]) -> dict:
    met = sum(1 for line in lines if line["status"] == "met")
    not_met = sum(1 for line in lines if line["status"] == "not_met")
    unknown = len(lines) - met - not_met
    verdict = "not_met" if not_met else ("met" if lines and not unknown else "incomplete")
    return {"met": met, "not_met": not_met, "unknown": unknown, "total": len(lines), "verdict": verdict}
