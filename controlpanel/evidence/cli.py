"""`manage.py runbook report RUN [--json]`: the run's scorecard with its figures (exit 1 if a line is not met)."""

import json

from .pending import pending
from .reconcile import size_growth
from .scorecard import build_scorecard, evidence_context, size_budget_percent, validation_categories


def add_arguments(parser):
    parser.add_argument("run", type=int)
    parser.add_argument("--json", action="store_true")


def report(run) -> dict:
    ctx = evidence_context(run)
    before, after = ctx["before"], ctx["after"]
    return {
        "run": run.pk,
        "target": run.target.name,
        "status": run.status,
        "scorecard": build_scorecard(run, ctx),
        "evidence_pending": pending(run),
        "reconciliation": ctx["reconciliation"],
        "validation": validation_categories(run),
        "growth": size_growth(before.data, after.data, size_budget_percent()) if before and after else None,
        "reports": {kind: ({"passed": r.passed, "collected_at": r.collected_at.isoformat(), "error": r.error,
                            "seconds": r.seconds} if r else None)
                    for kind, r in ((k, ctx[k]) for k in ("rls_audit", "probes", "sla", "indexes"))},
    }


def handle(command, options) -> int:
    run = command.run(options["run"])
    data = report(run)
    if options["json"]:
        command.stdout.write(json.dumps(data, indent=2, default=str))
    else:
        command.stdout.write(f"run {run.pk} on {run.target.name}: success criteria")
        section = None
        for line in data["scorecard"]:
            if line["section"] != section:
                section = line["section"]
                command.stdout.write(f"  {section}")
            status = f"collecting since {line['pending']['since']:%H:%M:%S}" if line["pending"] else line["status"]
            command.stdout.write(f"    [{status:<12}] {line['criterion']}")
    return 1 if any(line["status"] == "not_met" for line in data["scorecard"]) else 0
