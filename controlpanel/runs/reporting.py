"""JSON views of a run, shared by the CLI and exports."""

from controlpanel.runbook.definition import RUNBOOK


def _iso(value):
    return value.isoformat() if value else None


def run_status(run) -> dict:
    steps = {s.key: s for s in run.steps.all()}
    return {
        "run": run.pk,
        "target": run.target.name,
        "environment": run.target.environment,
        "status": run.status,
        "checksums": run.checksums,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "steps": [
            {
                "key": step.key,
                "title": step.title,
                "phase": RUNBOOK.phase_of(step.key).key,
                "status": steps[step.key].status,
                "started_at": _iso(steps[step.key].started_at),
                "finished_at": _iso(steps[step.key].finished_at),
                "attempts": steps[step.key].attempts.count(),
            }
            for step in RUNBOOK.all_steps()
            if step.key in steps
        ],
    }
