"""The three roles of the panel, as Django groups carrying custom permissions.

Views check permissions (not group names), so a lead can grant a capability to a group in the admin.
"""

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission

ONCALL = "On-call engineer"
LEAD = "Lead"
SUPPORT = "Support"

# Permission codenames, all declared on core.Capability.
OPERATE_RUNS = "operate_runs"
VIEW_RUNS = "view_runs"
LEAD_ACTIONS = "lead_actions"
LOOKUP_MEMBERSHIPS = "lookup_memberships"

CAPABILITIES = [
    (OPERATE_RUNS, "Create runs, tick checklists, start and cancel steps"),
    (VIEW_RUNS, "View runs, evidence, targets and monitoring"),
    (LEAD_ACTIONS, "Approve, override gates, roll back"),
    (LOOKUP_MEMBERSHIPS, "Look up organization memberships on targets (read-only)"),
]

ROLE_CAPABILITIES = {
    ONCALL: [OPERATE_RUNS, VIEW_RUNS],
    LEAD: [OPERATE_RUNS, VIEW_RUNS, LEAD_ACTIONS, LOOKUP_MEMBERSHIPS],
    SUPPORT: [LOOKUP_MEMBERSHIPS],
}


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str


DEMO_USERS = [
    DemoUser("oncall", ONCALL, "oncall-demo-pass"),
    DemoUser("lead", LEAD, "lead-demo-pass"),
    DemoUser("support", SUPPORT, "support-demo-pass"),
]


def perm(codename: str) -> str:
    return f"core.{codename}"


# Admin configuration leads may change (targets, commands, schedules, contacts); apps are matched by label.
LEAD_ADMIN_APPS = ("targets", "runs", "django_celery_beat", "support", "evidence", "monitoring", "leads")
LEAD_ADMIN_MODELS = {"target", "stepcommand", "contact", "escalationlevel", "periodictask", "intervalschedule",
                     "crontabschedule", "postmigrationtask"}
# Shown to leads, never edited by them: a periodic task runs any task with any arguments as anyone
# (e.g. drive_run "signed off" by another person), and deleting one can switch crash recovery off.
LEAD_VIEW_ONLY_APPS = ("django_celery_beat",)


def ensure_roles() -> dict[str, Group]:
    """Create or update the role groups; safe to call repeatedly."""
    groups = {}
    for role, codenames in ROLE_CAPABILITIES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = list(Permission.objects.filter(content_type__app_label="core", codename__in=codenames))
        if role == LEAD:
            permissions += Permission.objects.filter(
                content_type__app_label__in=LEAD_ADMIN_APPS, content_type__model__in=LEAD_ADMIN_MODELS
            ).exclude(content_type__app_label__in=LEAD_VIEW_ONLY_APPS, codename__regex=r"^(add|change|delete)_")
            permissions += Permission.objects.filter(codename="view_auditevent")
        group.permissions.set(permissions)
        groups[role] = group
    return groups


def role_of(user) -> str | None:
    if not user.is_authenticated:
        return None
    names = set(user.groups.values_list("name", flat=True))
    for role in (LEAD, ONCALL, SUPPORT):
        if role in names:
            return role
    return None
