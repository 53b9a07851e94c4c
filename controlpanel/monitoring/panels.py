"""What the monitoring area adds to shared pages (declared in controlpanel/panels.py)."""

from django.urls import reverse

from controlpanel.core import roles

from . import dashboard, postmigration
from .charts import table_html
from .models import HealthCheck


def run_panel(request, run):
    """Run page: the run's health checks (small charts) and its post-migration tasks."""
    if not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return None
    tasks = list(run.post_migration_tasks.select_related("owner", "done_by"))
    checks = HealthCheck.objects.filter(run=run)
    if not tasks and not checks.exists():
        return None
    charts = dashboard.run_charts(run)
    for chart in charts:
        chart.table = table_html(chart)
    return "monitoring/panel_run.html", {
        "run": run, "tasks": tasks, "charts": charts, "checks": checks.count(),
        "alerting": list(checks.filter(ok=False).order_by("-checked_at")[:5]),
    }


def home_panel(request):
    """Home page, for leads: overdue post-migration tasks."""
    if not request.user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        return None
    overdue = list(postmigration.overdue_tasks()[:20])
    if not overdue:
        return None
    return "monitoring/panel_home.html", {"overdue": overdue}


def target_links(request, target):
    if not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return []
    return [("Health", reverse("monitoring:target", args=[target.name])),
            ("Troubleshooting", reverse("monitoring:troubleshooting", args=[target.name]))]
