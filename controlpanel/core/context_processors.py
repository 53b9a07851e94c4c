from . import roles


def roles_context(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"role": None}
    from .extensions import NAV

    return {
        "nav_entries": [e for e in NAV if user.has_perm(roles.perm(e.permission))],
        "role": roles.role_of(user),
        "can_operate": user.has_perm(roles.perm(roles.OPERATE_RUNS)),
        "can_view_runs": user.has_perm(roles.perm(roles.VIEW_RUNS)),
        "can_lead": user.has_perm(roles.perm(roles.LEAD_ACTIONS)),
        "can_lookup": user.has_perm(roles.perm(roles.LOOKUP_MEMBERSHIPS)),
    }

