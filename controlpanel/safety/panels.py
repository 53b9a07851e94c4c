"""What the safety area shows on shared pages (declared in controlpanel/panels.py): the run page's exposure
banner, rehearsal and preflight status, failed Step 1 choices and rollback verdict; the home page's exposures;
the targets list's link to preflight and rehearsal."""

from django.urls import reverse

from controlpanel.core import roles
from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs import engine

from .gates import latest_rehearsal, passed_rehearsal, rls_exposures
from .models import PreflightReport
from .rollback import verdict


def run_panel(request, run):
    """Exposure banner, rehearsal / preflight status, failed Step 1 choices, rollback verdict."""
    if not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return None
    failed_step1 = [s for s in run.steps.filter(key__in=RUNBOOK.forward_keys(), status="failed")]
    failed = None
    if failed_step1:
        step = failed_step1[0]
        failed = {"step": step, "def": step.definition, "attempt": engine.current_attempt(step)}
    context = {
        "run": run,
        "exposures": rls_exposures(run.target),
        "preflight": PreflightReport.objects.filter(target=run.target).first(),
        "rehearsal": latest_rehearsal(run.target),
        "passed_rehearsal": passed_rehearsal(run),
        "failed": failed,
        "verdict": verdict(run),
        "can_lead": request.user.has_perm(roles.perm(roles.LEAD_ACTIONS)),
        "can_operate": request.user.has_perm(roles.perm(roles.OPERATE_RUNS)),
    }
    return "safety/_run_panel.html", context


def home_panel(request):
    exposures = rls_exposures()
    if not exposures:
        return None
    return "safety/_home_panel.html", {"exposures": exposures}


def target_links(request, target):
    if not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return []
    return [("Preflight & rehearsal", reverse("safety:target", args=[target.name]))]
