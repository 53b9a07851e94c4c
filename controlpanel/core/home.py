"""What the home page shows each role. Other apps add to it through small providers."""

from . import roles


def home_context(user) -> dict:
    context = {"sections": []}
    if user.has_perm(roles.perm(roles.VIEW_RUNS)):
        from controlpanel.runs.models import Run

        context["recent_runs"] = Run.objects.select_related("target", "created_by").order_by("-created_at")[:10]
    return context
