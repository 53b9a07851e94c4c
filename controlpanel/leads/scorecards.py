"""The one hook onto the evidence area's scorecard (`controlpanel.evidence.scorecard.build_scorecard`).

Isolated here so the rest of the leads area does not depend on its exact shape: lines are read as dicts
or objects with a `status` ("met" / "not_met" / anything else = unknown), a `title`/`label`, and evidence.
"""

import importlib
import logging

log = logging.getLogger(__name__)

MET = {"met", "passed", "pass", "ok", "succeeded", True}
NOT_MET = {"not_met", "failed", "fail", "bad", False}


def _builder():
    try:
        module = importlib.import_module("controlpanel.evidence.scorecard")
    except ImportError:
        return None
    return getattr(module, "build_scorecard", None)


def _get(item, *names, default=None):
    for name in names:
        if isinstance(item, dict) and name in item:
            return item[name]
        if not isinstance(item, dict) and hasattr(item, name):
            return getattr(item, name)
    return default


def _lines(scorecard) -> list:
    lines = _get(scorecard, "lines", "criteria", "items", default=None)
    if lines is None and isinstance(scorecard, (list, tuple)):
        lines = scorecard
    return list(lines or [])


def _status(line) -> str:
    value = _get(line, "status", "state", "met", "ok", default=None)
    value = getattr(value, "value", value)  # enums
    if isinstance(value, str):
        value = value.lower()
    if value in MET:
        return "met"
    if value in NOT_MET:
        return "not_met"
    return "unknown"


def scorecard_lines(run) -> list[dict] | None:
    """The scorecard as plain dicts (title, status, evidence), or None while the evidence area has none."""
    build = _builder()
    if build is None:
        return None
    try:
        scorecard = build(run)
    except Exception as exc:  # a broken scorecard must not break history or exports; say so instead
        log.warning("scorecard of run %s failed: %s", run.pk, type(exc).__name__)
        return [{"title": "Scorecard could not be computed", "status": "unknown", "evidence": type(exc).__name__}]
    rows = []
    for line in _lines(scorecard):
        evidence = _get(line, "evidence", "detail", "value", default="")
        rows.append({
            "title": str(_get(line, "title", "label", "criterion", "name", default="")),
            "status": _status(line),
            "evidence": evidence if isinstance(evidence, (str, int, float, dict, list)) else str(evidence),
        })
    return rows


def summarize(lines: list[dict] | None) -> dict | None:
    if lines is None:
        return None
    met = sum(1 for line in lines if line["status"] == "met")
    not_met = sum(1 for line in lines if line["status"] == "not_met")
    unknown = len(lines) - met - not_met
    verdict = "not_met" if not_met else ("met" if lines and not unknown else "incomplete")
    return {"met": met, "not_met": not_met, "unknown": unknown, "total": len(lines), "verdict": verdict}
