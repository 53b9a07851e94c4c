from django.utils.functional import SimpleLazyObject

from . import roles
from .navigation import NAV


def roles_context(request):
    """Role and capabilities for templates; lazy, so fragments that never show them cost no query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"role": None}

    def can(codename):
        return SimpleLazyObject(lambda: user.has_perm(roles.perm(codename)))

    return {
        "nav_entries": SimpleLazyObject(lambda: [e for e in NAV if user.has_perm(roles.perm(e.permission))]),
        "role": SimpleLazyObject(lambda: roles.role_of(user)),
        "can_operate": can(roles.OPERATE_RUNS),
        "can_view_runs": can(roles.VIEW_RUNS),
        "can_lead": can(roles.LEAD_ACTIONS),
        "can_lookup": can(roles.LOOKUP_MEMBERSHIPS),
    }
