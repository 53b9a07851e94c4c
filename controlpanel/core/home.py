"""What the home page shows each role; the other areas' panels are declared in controlpanel/panels.py."""

from controlpanel.panels import HOME_PANELS, render_panels

from . import roles


def home_context(request) -> dict:
    context: dict[str, object] = {"home_panels": render_panels(HOME_PANELS, request)}
    if request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        from controlpanel.runs.models import Run

        context["recent_runs"] = Run.objects.select_related("target", "created_by").order_by("-created_at")[:10]
    return context
