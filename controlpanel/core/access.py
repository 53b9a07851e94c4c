"""Role checks for views: one decorator, permissions not group names."""

from django.contrib.auth.decorators import permission_required

from . import roles


def requires(codename: str):
    """403 for a signed-in user without the capability (login itself is enforced by middleware)."""
    return permission_required(roles.perm(codename), raise_exception=True)
