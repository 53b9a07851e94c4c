"""What the home page shows each role; other areas add panels through core.extensions.HOME_PANELS."""

from . import roles
from .extensions import HOME_PANELS, render_panels


def home_context(request) -> dict:
    context: dict[str, object] = {"home_panels": render_panels(HOME_PANELS, request)}
    if request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        from controlpanel.runs.models import Run

        context["recent_runs"] = Run.objects.select_related("target", "created_by").order_by("-created_at")[:10]
    return context
