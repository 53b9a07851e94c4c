"""The scorecard panel on the run page (declared in controlpanel/panels.py)."""

from django.urls import reverse

from controlpanel.core import roles

from .scorecard import build_scorecard


def run_panel(request, run):
    if not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return None
    lines = build_scorecard(run)
    counts = {s: sum(1 for line in lines if line["status"] == s) for s in ("met", "not_met", "not_measured")}
    return "evidence/_run_panel.html", {"lines": lines, "counts": counts,
                                         "url": reverse("evidence:run", args=[run.pk])}
