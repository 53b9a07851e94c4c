"""The top navigation, in order: every area's entry declared here (the admin link is the template's, for staff)."""

from dataclasses import dataclass

from . import roles


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    permission: str  # capability codename from controlpanel.core.roles
    key: str  # data-nav attribute: tests and the current-page highlight find the entry by it


NAV = (
    NavEntry("Runs", "runs:list", roles.VIEW_RUNS, "runs"),
    NavEntry("Targets", "targets:list", roles.VIEW_RUNS, "targets"),
    NavEntry("History", "leads:history", roles.LEAD_ACTIONS, "history"),
    NavEntry("Safety", "safety:index", roles.VIEW_RUNS, "safety"),
    NavEntry("Monitoring", "monitoring:index", roles.VIEW_RUNS, "monitoring"),
    NavEntry("Membership lookup", "support:lookup", roles.LOOKUP_MEMBERSHIPS, "lookup"),
    NavEntry("Audit log", "leads:audit", roles.LEAD_ACTIONS, "audit"),
)
