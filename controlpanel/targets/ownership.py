"""Who owns what and who was granted what on a target, read once and re-created on a rehearsal copy.

A copy restored with `pg_dump --no-owner --no-acl` belongs wholly to the role that restored it. To rehearse
with production's privileges, `foreign_owners` tells which objects belong to roles the connected role does
not have the privileges of (on Supabase: `auth` and `auth.users`, owned by supabase_auth_admin), and `acls`
lists every explicit grant; `apply_to_copy` gives those objects to copy-local stand-in roles and re-grants.
"""

from dataclasses import dataclass

from psycopg import sql

# Objects the dump restores and that carry an owner or an ACL; extension members are the extension's.
_OBJECTS = """
WITH objects AS (
    SELECT 'schema' AS kind, n.oid, quote_ident(n.nspname) AS identity, n.nspowner AS owner, n.nspacl AS acl,
           n.oid AS nsp, 'pg_namespace'::regclass AS catalog
    FROM pg_namespace n
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                          WHEN 'f' THEN 'foreign table' ELSE 'table' END,
           c.oid, c.oid::regclass::text, c.relowner, c.relacl, c.relnamespace, 'pg_class'::regclass
    FROM pg_class c
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype = 'a' AND c.relkind = 'S')  -- a column's sequence follows its table
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
           p.oid, p.oid::regprocedure::text, p.proowner, p.proacl, p.pronamespace, 'pg_proc'::regclass
    FROM pg_proc p WHERE p.prokind IN ('f', 'p', 'w')
)
SELECT o.kind, o.identity, pg_get_userbyid(o.owner), pg_has_role(o.owner, 'USAGE'),
       coalesce((SELECT array_agg(ARRAY[CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                                        a.privilege_type, a.is_grantable::text]
                                  ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(o.acl) a), '{}'), o.acl IS NOT NULL
FROM objects o JOIN pg_namespace n ON n.oid = o.nsp
WHERE n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.catalog AND d.objid = o.oid AND d.deptype = 'e')
ORDER BY o.kind = 'schema' DESC, o.identity
"""


@dataclass(frozen=True)
class OwnedObject:
    kind: str  # schema | table | view | sequence | function | procedure | …
    identity: str  # as PostgreSQL prints it (regclass / regprocedure text, quoted schema name)
    owner: str
    ours: bool  # the connected role has the owner's privileges
    grants: tuple[tuple[str, str, bool], ...]  # (grantee or PUBLIC, privilege, with grant option)
    explicit_acl: bool  # an ACL was set (else the defaults apply, as on the copy)


def owned_objects(conn) -> list[OwnedObject]:
    return [OwnedObject(kind, identity, owner, ours, tuple((g, p, o == "true") for g, p, o in grants), explicit)
            for kind, identity, owner, ours, grants, explicit in conn.execute(_OBJECTS).fetchall()]


_DEFAULTS = """
SELECT pg_get_userbyid(d.defaclrole), pg_has_role(d.defaclrole, 'USAGE'), n.nspname, d.defaclobjtype::text,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, a.is_grantable
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a
WHERE a.grantee <> d.defaclrole
ORDER BY 1, 3, 4, 5, 6
"""
_DEFAULT_KINDS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


@dataclass(frozen=True)
class DefaultGrant:
    role: str  # whose new objects
    ours: bool
    schema: str | None
    kind: str  # TABLES | SEQUENCES | FUNCTIONS | TYPES | SCHEMAS
    grantee: str
    privilege: str
    grantable: bool


def default_grants(conn) -> list[DefaultGrant]:
    return [DefaultGrant(role, ours, schema, _DEFAULT_KINDS[kind], grantee, privilege, grantable)
            for role, ours, schema, kind, grantee, privilege, grantable in conn.execute(_DEFAULTS).fetchall()]


def current_role(conn) -> str:
    return conn.execute("SELECT current_user").fetchone()[0]


def _object(kind: str, identity: str) -> sql.Composable:
    keyword = {"table": "TABLE", "view": "TABLE", "materialized view": "TABLE", "foreign table": "TABLE",
               "sequence": "SEQUENCE", "function": "FUNCTION", "procedure": "PROCEDURE", "schema": "SCHEMA"}[kind]
    return sql.SQL("{} {}").format(sql.SQL(keyword), sql.SQL(identity))


def _alter_keyword(kind: str) -> str:
    return {"view": "VIEW", "materialized view": "MATERIALIZED VIEW", "foreign table": "FOREIGN TABLE",
            "sequence": "SEQUENCE", "function": "FUNCTION", "procedure": "PROCEDURE", "schema": "SCHEMA"}.get(
        kind, "TABLE")


def _grantee(name: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if name == "PUBLIC" else sql.Identifier(name)


def apply_to_copy(copy_conn, objects: list[OwnedObject], standins: dict[str, str], migrator: str) -> dict:
    """On the copy (all of it owned by `migrator`): give foreign objects to their stand-ins, re-create grants.

    The caller has made `migrator` a member of every stand-in (so it may give them objects and grant as
    them) and revokes that membership afterwards: from then on the migrator is, on the copy, exactly what it
    is on the source. Objects missing on the copy (not dumped) are skipped and counted."""
    present = {(obj.kind, obj.identity) for obj in owned_objects(copy_conn)}
    moved = granted = skipped = 0
    rename = dict(standins)
    for obj in objects:
        if (obj.kind, obj.identity) not in present:
            skipped += 1
            continue
        if not obj.ours:
            copy_conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
                sql.SQL(_alter_keyword(obj.kind)), sql.SQL(obj.identity), sql.Identifier(standins[obj.owner])))
            moved += 1
        if not obj.explicit_acl:
            continue
        target = _object(obj.kind, obj.identity)
        copy_conn.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(target))
        for grantee, privilege, grantable in obj.grants:
            grantee = rename.get(grantee, migrator if grantee == obj.owner and obj.ours else grantee)
            copy_conn.execute(sql.SQL("GRANT {} ON {} TO {}{}").format(
                sql.SQL(privilege), target, _grantee(grantee),
                sql.SQL(" WITH GRANT OPTION" if grantable else "")))
            granted += 1
    return {"owners_moved": moved, "grants": granted, "not_in_copy": skipped}


def apply_default_grants(copy_conn, defaults: list[DefaultGrant], standins: dict[str, str]) -> int:
    """ALTER DEFAULT PRIVILEGES as on the source (a foreign role's through its stand-in): what the migration
    creates on the copy is granted to the API roles exactly as it will be on the source."""
    for grant in defaults:
        role = grant.role if grant.ours else standins.get(grant.role)
        if role is None:
            continue
        grantee = standins.get(grant.grantee, grant.grantee)
        copy_conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} GRANT {} ON {} TO {}{}").format(
            sql.Identifier(role),
            sql.SQL(" IN SCHEMA {}").format(sql.Identifier(grant.schema)) if grant.schema else sql.SQL(""),
            sql.SQL(grant.privilege), sql.SQL(grant.kind), _grantee(grantee),
            sql.SQL(" WITH GRANT OPTION" if grant.grantable else "")))
    return len(defaults)


def create_standins(conn, owners, prefix: str, migrator: str, into: dict[str, str]) -> dict[str, str]:
    """One NOLOGIN stand-in role per foreign owner (CREATEROLE suffices), the migrator a member for now.
    Filled into `into` as they are made, so the caller can drop them even after a failure midway."""
    for number, owner in enumerate(sorted(set(owners)), start=1):
        name = f"{prefix}_owner{number}"
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        into[owner] = name
        _grant_membership(conn, name, migrator)
    return into


def _grant_membership(conn, role: str, member: str) -> None:
    # PostgreSQL 16+ needs SET TRUE to give objects to a role; 15 has no such option.
    if conn.info.server_version >= 160000:
        conn.execute(sql.SQL("GRANT {} TO {} WITH INHERIT TRUE, SET TRUE").format(
            sql.Identifier(role), sql.Identifier(member)))
    else:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(member)))


def revoke_memberships(conn, standins: dict[str, str], migrator: str) -> None:
    for name in standins.values():
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(name), sql.Identifier(migrator)))


def drop_roles(conn, names) -> None:
    for name in names:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
