"""Which area adds what to the shared pages, in order — declared here, as urls.py declares the URLs.

A panel is ``fn(request, obj) -> (template_name, context) | None`` (None: nothing to show this viewer);
a target link function returns a list of ``(label, url)``. The runbook CLI's extra subcommands are declared
in runs/management/commands/runbook.py.
"""

from controlpanel.evidence import panels as evidence_panels
from controlpanel.leads import panels as leads_panels
from controlpanel.monitoring import panels as monitoring_panels
from controlpanel.safety import panels as safety_panels

HOME_PANELS = (
    safety_panels.home_panel,  # RLS exposures first: a table left open is the most urgent thing to see
    monitoring_panels.home_panel,
    leads_panels.approvals_inbox,
)
RUN_PANELS = (
    evidence_panels.run_panel,
    safety_panels.run_panel,
    monitoring_panels.run_panel,
    leads_panels.lead_links_panel,
    leads_panels.approvals_panel,
    leads_panels.escalation_panel,
)
TARGET_LINKS = (
    safety_panels.target_links,
    monitoring_panels.target_links,
)


def render_panels(panels, *args) -> list[tuple[str, dict]]:
    return [shown for shown in (panel(*args) for panel in panels) if shown]


def target_links(request, target) -> list[tuple[str, str]]:
    return [link for fn in TARGET_LINKS for link in fn(request, target)]
