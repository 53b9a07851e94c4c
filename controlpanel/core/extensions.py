"""Where feature areas plug into shared pages, registered from each app's AppConfig.ready().

Keeps ownership clear: the runs app renders the run page, the evidence app adds its panel to it, etc.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    permission: str  # capability codename from controlpanel.core.roles
    key: str
    order: int = 50


# Top navigation entries.
NAV: list[NavEntry] = []
# Panels on the home page: fn(request) -> (template_name, context) | None
HOME_PANELS: list = []
# Panels on a run page: fn(request, run) -> (template_name, context) | None
RUN_PANELS: list = []
# Panels on the targets list, per target: fn(request, target) -> list of (label, url)
TARGET_LINKS: list = []
# `manage.py runbook <name>` subcommands: name -> (add_arguments(parser), handle(command, options) -> exit code)
RUNBOOK_SUBCOMMANDS: dict = {}


def add_nav(entry: NavEntry) -> None:
    if all(e.key != entry.key for e in NAV):
        NAV.append(entry)
        NAV.sort(key=lambda e: e.order)


def register(collection: list, fn) -> None:
    if fn not in collection:
        collection.append(fn)


def render_panels(panels: list, *args) -> list[tuple[str, dict]]:
    rendered = []
    for panel in panels:
        result = panel(*args)
        if result:
            rendered.append(result)
    return rendered
