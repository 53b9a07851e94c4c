"""What the panel knows about the multi-tenant shape of a target, read from its catalog."""

TENANT_TABLES = ("profiles", "audit_reports", "automation_jobs", "generated_automations")
OPTIONAL_TENANT_TABLES = ("waitlist",)
ORGANIZATION_TABLES = ("organizations", "organization_memberships")


def existing_tables(conn, names) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s) ORDER BY c.relname",
        (list(names),),
    ).fetchall()
    return [r[0] for r in rows]


def tenant_tables(conn) -> list[str]:
    """Tenant tables present on this target (optional ones only when they exist)."""
    return existing_tables(conn, TENANT_TABLES + OPTIONAL_TENANT_TABLES)


def organization_indexes(conn) -> list[dict]:
    """Non-constraint indexes on organization_id columns of public tables: the 'non-critical' ones."""
    rows = conn.execute(
        """
        SELECT i.relname, t.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relnamespace = 'public'::regnamespace
          AND NOT x.indisprimary AND NOT x.indisunique
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'organization_id'
                      AND a.attnum = ANY(x.indkey))
        ORDER BY t.relname, i.relname
        """
    ).fetchall()
    return [{"index": name, "table": table, "definition": definition} for name, table, definition in rows]


def legacy_role_model(conn, manifest, legacy_users: list[str], examples: int = 5) -> dict:
    """Against the "personal" promise: legacy users not admin of exactly one active organization, and the
    organizations a legacy user administers that have other members (a shared organization)."""
    from psycopg import sql

    schema, name = manifest.memberships_table.split(".", 1)
    active = (sql.SQL("{} = {}").format(sql.Identifier(manifest.status_column), sql.Literal(manifest.active_status))
              if manifest.status_column else sql.SQL("true"))
    params = {"users": legacy_users, "admin": list(manifest.admin_roles), "n": examples}
    fmt = {"m": sql.Identifier(schema, name), "u": sql.Identifier(manifest.user_column),
           "o": sql.Identifier(manifest.organization_column), "r": sql.Identifier(manifest.role_column),
           "active": active}
    not_one = conn.execute(sql.SQL(
        """
        WITH per_user AS (
            SELECT x.id, count(m.*) FILTER (WHERE m.{r}::text = ANY (%(admin)s)) AS admin_of
            FROM unnest(%(users)s::uuid[]) AS x(id)
            LEFT JOIN {m} m ON m.{u} = x.id AND {active}
            GROUP BY x.id)
        SELECT count(*), (array_agg(id::text || ' admin of ' || admin_of ORDER BY id))[1:%(n)s]
        FROM per_user WHERE admin_of <> 1
        """).format(**fmt), params).fetchone()
    shared = conn.execute(sql.SQL(
        """
        WITH admin_orgs AS (
            SELECT DISTINCT m.{o} AS org FROM {m} m
            WHERE m.{u} = ANY (%(users)s::uuid[]) AND m.{r}::text = ANY (%(admin)s) AND {active}),
        sizes AS (SELECT a.org, count(m.*) AS members FROM admin_orgs a JOIN {m} m ON m.{o} = a.org AND {active}
                  GROUP BY a.org)
        SELECT count(*), (array_agg(org::text || ' has ' || members || ' members' ORDER BY members DESC, org))
                          [1:%(n)s]
        FROM sizes WHERE members > 1
        """).format(**fmt), params).fetchone()
    return {"legacy_users": len(legacy_users),
            "users_not_admin_of_exactly_one": {"count": not_one[0], "examples": list(not_one[1] or [])},
            "shared_organizations": {"count": shared[0], "examples": list(shared[1] or [])}}
