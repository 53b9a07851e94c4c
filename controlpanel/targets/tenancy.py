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
