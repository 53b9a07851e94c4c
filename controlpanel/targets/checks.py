"""Connection check: is the target reachable, and does it have the Supabase shape the bundle relies on."""

from dataclasses import asdict, dataclass, field

from django.utils import timezone

from .connection import TargetUnavailable, target_connection
from .privileges import panel_privileges

API_ROLES = ("anon", "authenticated", "service_role")

SHAPE_QUERY = """
SELECT
  current_setting('server_version') AS server_version,
  to_regclass('auth.users') IS NOT NULL AS has_auth_users,
  to_regprocedure('auth.uid()') IS NOT NULL AS has_auth_uid,
  (SELECT coalesce(jsonb_object_agg(rolname, rolbypassrls), '{}'::jsonb)
     FROM pg_roles WHERE rolname = ANY(%s)) AS roles
"""


@dataclass
class TargetCheck:
    reachable: bool
    error: str = ""
    server_version: str = ""
    has_auth_users: bool = False
    has_auth_uid: bool = False
    roles: dict = field(default_factory=dict)  # role name -> has BYPASSRLS
    role: str = ""  # the role the panel connects as
    superuser: bool = False
    privileges: list = field(default_factory=list)  # PanelPrivilege as dicts: what it has vs needs

    @property
    def missing(self) -> list[str]:
        missing = []
        if not self.has_auth_users:
            missing.append("table auth.users")
        if not self.has_auth_uid:
            missing.append("function auth.uid()")
        missing += [f"role {r}" for r in API_ROLES if r not in self.roles]
        if "service_role" in self.roles and not self.roles["service_role"]:
            missing.append("BYPASSRLS on service_role")
        return missing

    @property
    def missing_privileges(self) -> list[str]:
        return [f"{p['name']} ({p['needed_for']})" for p in self.privileges if p["required"] and not p["held"]]

    @property
    def degraded(self) -> list[str]:
        return [f"{p['name']}: {p['without']}" for p in self.privileges if not p["required"] and not p["held"]]

    @property
    def supabase_shape(self) -> bool:
        return self.reachable and not self.missing

    def as_dict(self) -> dict:
        return asdict(self) | {"missing": self.missing, "supabase_shape": self.supabase_shape,
                               "missing_privileges": self.missing_privileges, "degraded": self.degraded}


def check_target(target) -> TargetCheck:
    try:
        with target_connection(target, application_name="controlpanel-check") as conn:
            row = conn.execute(SHAPE_QUERY, (list(API_ROLES),)).fetchone()
            role, superuser = conn.execute(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
            privileges = [asdict(p) for p in panel_privileges(conn, API_ROLES)]
    except TargetUnavailable as exc:
        return TargetCheck(reachable=False, error=str(exc))
    version, has_users, has_uid, roles = row
    return TargetCheck(True, "", version, has_users, has_uid, roles, role, superuser, privileges)


def check_and_store(target) -> TargetCheck:
    result = check_target(target)
    target.last_check = result.as_dict()
    target.last_checked_at = timezone.now()
    target.save(update_fields=["last_check", "last_checked_at"])
    return result
