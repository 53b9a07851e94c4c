"""What the connected role may do on a target, read from the catalog (ownership, grants, memberships).

Objects are looked up by name through pg_namespace / pg_class, never through to_regclass: a name in a
schema the role has no USAGE on must read "not accessible", not raise. Ownership means what PostgreSQL's
own check means: the role has the privileges of the owner (pg_has_role … 'USAGE'), so a superuser owns all.
"""

from dataclasses import dataclass, field

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# Predefined role the panel uses when present (PostgreSQL 10+): seeing other sessions' queries.
STATS_ROLE = "pg_read_all_stats"


@dataclass(frozen=True)
class Relation:
    name: str  # schema.name
    exists: bool
    owner: str = ""
    owned: bool = False  # the connected role has the owner's privileges
    kind: str = ""  # pg_class.relkind
    privileges: frozenset = frozenset()  # of TABLE_PRIVILEGES

    def may(self, privilege: str) -> bool:
        return self.owned or privilege in self.privileges


@dataclass(frozen=True)
class Schema:
    name: str
    exists: bool
    owner: str = ""
    owned: bool = False
    usage: bool = False
    create: bool = False


@dataclass(frozen=True)
class Function:
    name: str  # schema.name (every overload)
    exists: bool
    owners: tuple = ()
    owned: bool = False  # every overload
    execute: bool = False  # every overload


@dataclass(frozen=True)
class RoleFacts:
    name: str
    superuser: bool
    bypassrls: bool
    createdb: bool
    createrole: bool
    member_of: frozenset = field(default_factory=frozenset)  # roles it may SET ROLE to (or has the privileges of)


def _split(name: str) -> tuple[str, str]:
    schema, _, rel = name.rpartition(".")
    return schema or "public", rel


def role_facts(conn, roles=()) -> RoleFacts:
    """The connected role, and which of `roles` it is a member of."""
    row = conn.execute(
        "SELECT rolname, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles "
        "WHERE rolname = current_user").fetchone()
    assert row is not None  # the connected role always has its pg_roles row
    members = conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER')",
        (list(roles),)).fetchall()
    name, superuser, bypassrls, createdb, createrole = row
    return RoleFacts(name, superuser, bypassrls, createdb, createrole, member_of=frozenset(r[0] for r in members))


def relations(conn, names) -> dict[str, Relation]:
    names = sorted(set(names))
    if not names:
        return {}
    rows = conn.execute(
        """
        SELECT q.name, c.oid IS NOT NULL, coalesce(pg_get_userbyid(c.relowner), ''),
               coalesce(pg_has_role(c.relowner, 'USAGE'), false), coalesce(c.relkind::text, ''),
               coalesce(array(SELECT p FROM unnest(%s::text[]) p
                              WHERE c.oid IS NOT NULL AND has_table_privilege(c.oid, p)), '{}')
        FROM unnest(%s::text[], %s::text[], %s::text[]) AS q(name, nsp, rel)
        LEFT JOIN pg_namespace n ON n.nspname = q.nsp
        LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = q.rel
        """,
        (list(TABLE_PRIVILEGES), names, [_split(n)[0] for n in names], [_split(n)[1] for n in names]),
    ).fetchall()
    return {name: Relation(name, exists, owner, owned, kind, frozenset(privs))
            for name, exists, owner, owned, kind, privs in rows}


def schemas(conn, names) -> dict[str, Schema]:
    names = sorted(set(names))
    rows = conn.execute(
        """
        SELECT q.name, n.oid IS NOT NULL, coalesce(pg_get_userbyid(n.nspowner), ''),
               coalesce(pg_has_role(n.nspowner, 'USAGE'), false),
               n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE'),
               n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'CREATE')
        FROM unnest(%s::text[]) AS q(name) LEFT JOIN pg_namespace n ON n.nspname = q.name
        """,
        (names,),
    ).fetchall()
    return {row[0]: Schema(*row) for row in rows}


def functions(conn, names) -> dict[str, Function]:
    names = sorted(set(names))
    rows = conn.execute(
        """
        SELECT q.name, count(p.oid) > 0, array_remove(array_agg(DISTINCT pg_get_userbyid(p.proowner)), NULL),
               coalesce(bool_and(pg_has_role(p.proowner, 'USAGE')), false),
               coalesce(bool_and(has_function_privilege(p.oid, 'EXECUTE')), false)
        FROM unnest(%s::text[], %s::text[], %s::text[]) AS q(name, nsp, fn)
        LEFT JOIN pg_namespace n ON n.nspname = q.nsp
        LEFT JOIN pg_proc p ON p.pronamespace = n.oid AND p.proname = q.fn
        GROUP BY q.name
        """,
        (names, [_split(n)[0] for n in names], [_split(n)[1] for n in names]),
    ).fetchall()
    return {name: Function(name, exists, tuple(owners), owned, execute)
            for name, exists, owners, owned, execute in rows}


def table_children(conn, kind: str, keys) -> set[tuple[str, str]]:
    """Which (schema.table, name) triggers or policies exist (kind "trigger" / "policy")."""
    keys = sorted(set(keys))
    if not keys:
        return set()
    catalog = {"trigger": ("pg_trigger", "tgrelid", "tgname"), "policy": ("pg_policy", "polrelid", "polname")}[kind]
    rows = conn.execute(
        f"""
        SELECT q.tbl, q.obj FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS q(tbl, nsp, rel, obj)
        JOIN pg_namespace n ON n.nspname = q.nsp
        JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = q.rel
        JOIN {catalog[0]} t ON t.{catalog[1]} = c.oid AND t.{catalog[2]} = q.obj
        """,
        ([k[0] for k in keys], [_split(k[0])[0] for k in keys], [_split(k[0])[1] for k in keys],
         [k[1] for k in keys]),
    ).fetchall()
    return {(t, o) for t, o in rows}


def role_may_execute(conn, role: str, function_signature: str) -> bool | None:
    """Whether `role` may call the function (None: role or function missing, or not visible)."""
    row = conn.execute(
        "SELECT CASE WHEN to_regrole(%s) IS NULL OR to_regprocedure(%s) IS NULL THEN NULL "
        "ELSE has_function_privilege(%s, %s, 'EXECUTE') END",
        (role, function_signature, role, function_signature)).fetchone()
    return row[0]


@dataclass(frozen=True)
class PanelPrivilege:
    """One privilege the panel's connection role needs (required) or uses when it has it (optional)."""
    name: str
    needed_for: str
    required: bool
    held: bool
    without: str = ""  # what degrades when an optional one is missing


# What the panel checks, in the order the README lists them.
_PANEL_PRIVILEGES_SQL = """
SELECT r.rolsuper, r.rolbypassrls, r.rolcreatedb, r.rolcreaterole,
       coalesce((SELECT array_agg(g.rolname) FROM pg_roles g
                 WHERE g.rolname = ANY(%(roles)s) AND pg_has_role(current_user, g.oid, 'MEMBER')), '{}'),
       (SELECT has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = 'auth'),
       (SELECT has_table_privilege(c.oid, 'SELECT') FROM pg_class c
         WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'auth') AND c.relname = 'users'),
       (SELECT has_function_privilege('authenticated', p.oid, 'EXECUTE') FROM pg_proc p
         WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'auth') AND p.proname = 'uid'
           AND p.pronargs = 0 AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated')),
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'), pg_has_role(current_user, 'pg_monitor', 'USAGE')
FROM pg_roles r WHERE r.rolname = current_user
"""


def panel_privileges(conn, api_roles=("anon", "authenticated", "service_role")) -> list[PanelPrivilege]:
    (superuser, bypassrls, createdb, createrole, members, auth_usage, users_select, uid_execute, read_stats,
     monitor) = conn.execute(_PANEL_PRIVILEGES_SQL, {"roles": list(api_roles)}).fetchone()
    held = [superuser or role in members for role in api_roles]
    return [
        *(PanelPrivilege(f"member of {role}", f"isolation probes and SLA timing (SET ROLE {role})", True, h)
          for role, h in zip(api_roles, held, strict=True)),
        PanelPrivilege("BYPASSRLS", "snapshots, reconciliation and the backup see every row", True,
                       bool(superuser or bypassrls)),
        PanelPrivilege("USAGE on schema auth, SELECT on auth.users",
                       "support lookups, reconciliation, users without a membership", True,
                       bool(superuser or (auth_usage and users_select))),
        PanelPrivilege("EXECUTE on auth.uid() for authenticated", "every owner and organization policy", True,
                       bool(uid_execute)),
        PanelPrivilege("CREATEDB", "the rehearsal's copy (a database of its own)", True, bool(superuser or createdb)),
        PanelPrivilege("CREATEROLE", "the rehearsal copy's stand-ins for owners such as supabase_auth_admin", True,
                       bool(superuser or createrole)),
        PanelPrivilege(STATS_ROLE, "other sessions' queries, states and wait events in the lock and session views",
                       False, bool(read_stats),
                       "waiters are still found (pg_locks); their query reads 'query hidden'"),
        PanelPrivilege("pg_monitor", "replication lag in the preflight", False, bool(monitor),
                       "replication lag reads unknown"),
    ]
