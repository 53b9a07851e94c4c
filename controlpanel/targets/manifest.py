"""What a bundle declares about itself: ``manifest.toml`` in the bundle directory, read here and only here.

Another team's bundle may name its organization and membership tables and columns differently, and promise a
different membership model; what it does not declare falls back to the project's defaults below. Example::

    [memberships]
    table = "public.organization_memberships"   # user, organization, role, status columns below
    user_column = "user_id"
    organization_column = "organization_id"
    role_column = "role"
    status_column = "status"                     # "" when memberships have no status
    active_status = "active"
    admin_roles = ["owner", "admin"]

    [promise]
    legacy_users = "personal"   # each legacy user admin of exactly one organization, no one else a member of it
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

FILE_NAME = "manifest.toml"
PROMISES = ("personal", "none")


class ManifestError(ValueError):
    """The manifest is unreadable or names an unknown promise: said, never guessed around."""


@dataclass(frozen=True)
class Manifest:
    memberships_table: str = "public.organization_memberships"
    user_column: str = "user_id"
    organization_column: str = "organization_id"
    role_column: str = "role"
    status_column: str = "status"
    active_status: str = "active"
    admin_roles: tuple[str, ...] = ("owner", "admin")
    legacy_users: str = "personal"
    source: str = "defaults"


def load_manifest(directory: Path | str | None) -> Manifest:
    path = Path(directory or ".") / FILE_NAME
    if not path.exists():
        return Manifest()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path.name}: {exc}") from None
    memberships = data.get("memberships", {})
    values = {"memberships_table": memberships.get("table"), **{k: memberships.get(k) for k in (
        "user_column", "organization_column", "role_column", "status_column", "active_status")},
              "legacy_users": data.get("promise", {}).get("legacy_users")}
    if memberships.get("admin_roles") is not None:
        values["admin_roles"] = tuple(memberships["admin_roles"])
    known = {f.name for f in fields(Manifest)}
    manifest = Manifest(**{k: v for k, v in values.items() if v is not None and k in known}, source=str(path))
    if manifest.legacy_users not in PROMISES:
        raise ManifestError(f"{path.name}: promise.legacy_users must be one of {', '.join(PROMISES)}")
    return manifest
