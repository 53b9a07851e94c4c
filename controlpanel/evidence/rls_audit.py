"""RLS audit of a target's catalog: where row-level security would not isolate organizations.

Stable interface (reused by the scheduled health checks):

    audit_rls(conn) -> list[Finding]

``conn`` is a psycopg 3 connection to the target (any transaction state; only catalog reads are made).
Each ``Finding`` has ``code``, ``severity`` ("critical", "high", "medium", "low"), ``object``, ``message``
and ``fix`` (how to correct it); ``Finding.as_dict()`` is JSON-ready. ``blocking(findings)`` returns the
ones that fail the audit (critical and high). ``policy_coverage(conn)`` is the runbook's own query.

Checks: tables readable or writable by the API roles without RLS; RLS enabled but no policy for a
command; writable policies without WITH CHECK (or with a WITH CHECK / USING of ``true`` for API users on
a tenant table); views that bypass RLS (no security_invoker); SECURITY DEFINER functions without a fixed
search_path; per-row function calls in policy expressions (not wrapped in a scalar ``(select ...)``);
policy columns without an index; and every lint of the registry in evidence/lints.py (Splinter's lints
that apply to a migrated schema, recursion, self-escalation, NULL disjuncts, inner bindings). Each finding's
``key`` is stable across snapshots: ``new_findings(before, after)`` keeps what a migration introduced.
"""

from pglast import ast

from controlpanel.targets import tenancy
from controlpanel.targets.security import read_security_model
from controlpanel.targets.sqltree import names as _names
from controlpanel.targets.sqltree import parse_expression as _parse_expression
from controlpanel.targets.sqltree import walk as _walk

from .lints import Finding, new_findings, run_lints

SEVERITIES = ("critical", "high", "medium", "low")
BLOCKING = ("critical", "high")
API_ROLES = ("anon", "authenticated")
TENANT = set(tenancy.TENANT_TABLES + tenancy.OPTIONAL_TENANT_TABLES + tenancy.ORGANIZATION_TABLES)

POLICY_COVERAGE_SQL = """
SELECT tablename, policyname, cmd, roles
FROM pg_policies
WHERE schemaname = 'public'
ORDER BY tablename, policyname
"""


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity in BLOCKING]


def policy_coverage(conn) -> list[dict]:
    """The runbook's "Check RLS policy coverage" query."""
    return [{"table": t, "policy": p, "cmd": c, "roles": list(r)} for t, p, c, r in
            conn.execute(POLICY_COVERAGE_SQL).fetchall()]


def _existing_roles(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                       (list(API_ROLES),)).fetchall()]


def _tables_without_rls(conn, roles) -> list[Finding]:
    findings = []
    rows = conn.execute(
        """
        SELECT c.relname, r.rolname,
               has_table_privilege(r.rolname, c.oid, 'SELECT') AS can_read,
               has_table_privilege(r.rolname, c.oid, 'INSERT, UPDATE, DELETE') AS can_write
        FROM pg_class c CROSS JOIN (SELECT unnest(%s::text[]) AS rolname) r
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
          AND has_table_privilege(r.rolname, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
        ORDER BY c.relname, r.rolname
        """, (roles,)).fetchall()
    by_table: dict[str, list[str]] = {}
    for table, role, can_read, can_write in rows:
        access = "/".join(a for a, ok in (("read", can_read), ("write", can_write)) if ok)
        by_table.setdefault(table, []).append(f"{role} ({access})")
    for table, grants in by_table.items():
        findings.append(Finding(
            "table_without_rls", "critical" if table in TENANT else "high", f"public.{table}",
            f"RLS is disabled but the API roles have privileges: {', '.join(grants)}; every row is exposed.",
            f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY; then add organization policies "
            f"(or REVOKE ALL ON public.{table} FROM anon, authenticated if the API must not reach it)."))
    return findings


def _commands_without_policy(conn) -> list[Finding]:
    if "authenticated" not in _existing_roles(conn):
        return []
    findings = []
    rows = conn.execute(
        """
        SELECT c.relname, cmd.c,
               EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polpermissive
                       AND p.polcmd IN ('*', CASE cmd.c WHEN 'SELECT' THEN 'r' WHEN 'INSERT' THEN 'a'
                                                       WHEN 'UPDATE' THEN 'w' ELSE 'd' END::"char")
                       AND (p.polroles = '{0}' OR 'authenticated'::regrole::oid = ANY (p.polroles)))
        FROM pg_class c CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS cmd(c)
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity
          AND has_table_privilege('authenticated', c.oid, cmd.c)
        ORDER BY c.relname, array_position(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], cmd.c)
        """).fetchall()
    missing: dict[str, list[str]] = {}
    for table, command, covered in rows:
        if not covered:
            missing.setdefault(table, []).append(command)
    for table, commands in missing.items():
        findings.append(Finding(
            "command_without_policy", "low", f"public.{table}",
            f"authenticated holds {', '.join(commands)} but no policy allows it: such statements are denied "
            "(RLS default deny). Intended?",
            f"Add a policy FOR {commands[0]} TO authenticated if the application needs it, or REVOKE "
            f"{', '.join(commands)} ON public.{table} FROM authenticated to make the intent explicit."))
    return findings


def _policies(conn) -> list[tuple]:
    return conn.execute(
        """
        SELECT p.tablename, p.policyname, p.cmd, p.roles::text[], p.qual, p.with_check, p.permissive
        FROM pg_policies p WHERE p.schemaname = 'public' ORDER BY p.tablename, p.policyname
        """).fetchall()


def _api_policy(roles) -> bool:
    return any(r in ("public", *API_ROLES) for r in roles)


def _with_check(policies) -> list[Finding]:
    findings = []
    for table, name, cmd, roles, qual, with_check, permissive in policies:
        if not _api_policy(roles) or permissive != "PERMISSIVE":
            continue
        obj = f"policy {name} on public.{table}"
        if cmd in ("UPDATE", "ALL") and with_check is None:
            # On a tenant table USING alone lets a writer move a row into any organization USING admits.
            findings.append(Finding(
                "policy_without_with_check", "high" if table in TENANT else "medium", obj,
                f"FOR {cmd} policy without WITH CHECK: new row versions are only checked by USING, which is easy "
                "to loosen by accident and lets rows move if USING ever allows more than the writer's organizations.",
                f"ALTER POLICY {name} ON public.{table} WITH CHECK (organization_id = ANY (ARRAY(SELECT "
                "public.user_writable_organization_ids())));"))
        if table in TENANT and (with_check or "").strip() == "true" and cmd in ("INSERT", "UPDATE", "ALL"):
            findings.append(Finding(
                "policy_check_true", "critical", obj,
                f"FOR {cmd} policy with WITH CHECK (true) for {', '.join(roles)}: API users can write rows into "
                "any organization.",
                "Restrict it: WITH CHECK (organization_id = ANY (ARRAY(SELECT "
                f"public.user_writable_organization_ids()))) or drop policy {name}."))
        if table in TENANT and (qual or "").strip() == "true" and cmd in ("SELECT", "UPDATE", "DELETE", "ALL"):
            findings.append(Finding(
                "policy_using_true", "critical", obj,
                f"FOR {cmd} policy with USING (true) for {', '.join(roles)}: every organization's rows are exposed.",
                f"Restrict it: USING (organization_id = ANY (ARRAY(SELECT public.user_organization_ids()))) "
                f"or drop policy {name}."))
    return findings


def _views_bypassing_rls(conn, roles) -> list[Finding]:
    findings = []
    rows = conn.execute(
        """
        SELECT v.relname, pg_get_userbyid(v.relowner),
               array_agg(DISTINCT t.relname ORDER BY t.relname) AS bases,
               bool_or(t.relrowsecurity) AS base_has_rls,
               array_agg(DISTINCT r.rolname) FILTER (WHERE has_table_privilege(r.rolname, v.oid, 'SELECT')) AS readers
        FROM pg_class v
        JOIN pg_rewrite rw ON rw.ev_class = v.oid
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                         AND d.refclassid = 'pg_class'::regclass
        JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid AND t.relkind IN ('r', 'p')
        CROSS JOIN (SELECT unnest(%s::text[]) AS rolname) r
        WHERE v.relnamespace = 'public'::regnamespace AND v.relkind = 'v'
          AND NOT coalesce(v.reloptions::text[] && ARRAY['security_invoker=true', 'security_invoker=on',
                                                         'security_invoker=1'], false)
        GROUP BY v.oid, v.relname, v.relowner
        ORDER BY v.relname
        """, (roles,)).fetchall()
    for view, owner, bases, base_has_rls, readers in rows:
        if not readers or not base_has_rls:
            continue
        findings.append(Finding(
            "view_bypasses_rls", "critical" if TENANT.intersection(bases) else "high", f"public.{view}",
            f"View over {', '.join(bases)} runs with its owner's rights ({owner}), not the caller's: "
            f"{', '.join(sorted(readers))} read every organization's rows through it.",
            f"ALTER VIEW public.{view} SET (security_invoker = true);"))
    return findings


def _definer_without_search_path(conn) -> list[Finding]:
    rows = conn.execute(
        """
        SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('public', 'auth') AND p.prosecdef
          AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search\\_path=%%')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype = 'e')
        ORDER BY 1
        """).fetchall()
    return [Finding(
        "definer_without_search_path", "high", f"function {name}",
        "SECURITY DEFINER function without a fixed search_path: a caller who can create objects in a schema on "
        "the search_path can make it run their code with the owner's rights.",
        f"ALTER FUNCTION {name} SET search_path = '';  (and schema-qualify the names it uses)") for (name,) in rows]


# --- policy expressions ----------------------------------------------------------------------------

def expression_calls_and_columns(text: str, table: str) -> tuple[list[str], list[str]]:
    """(functions called outside any sub-select, columns of `table` referenced) in a policy expression."""
    calls, columns = [], []
    for node, in_sublink in _walk(_parse_expression(text)):
        if isinstance(node, ast.FuncCall) and not in_sublink:
            calls.append(".".join(_names(node.funcname)))
        elif isinstance(node, ast.ColumnRef):
            names = _names(node.fields)
            if len(names) == 1 and not in_sublink:
                columns.append(names[0])
            elif len(names) == 2 and names[0] == table:
                columns.append(names[1])
    return calls, columns


def _user_functions(conn) -> dict[str, tuple[str, str]]:
    """name and schema.name -> (language, volatility) for functions outside the system schemas."""
    out = {}
    for schema, name, lang, volatile in conn.execute(
            "SELECT n.nspname, p.proname, l.lanname, p.provolatile::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'").fetchall():
        out[f"{schema}.{name}"] = (lang, volatile)
        out.setdefault(name, (lang, volatile))
    return out


def _indexed_leading_columns(conn, table: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
        "WHERE x.indrelid = to_regclass(%s) AND x.indisvalid", (f"public.{table}",)).fetchall()}


def _table_columns(conn, table: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (f"public.{table}",)).fetchall()}


def _policy_expressions(conn, policies) -> list[Finding]:
    findings = []
    functions = _user_functions(conn)
    unindexed: dict[tuple[str, str], list[str]] = {}
    for table, name, _cmd, roles, qual, with_check, _ in policies:
        if not _api_policy(roles):
            continue
        table_columns = _table_columns(conn, table)
        indexed = _indexed_leading_columns(conn, table)
        for label, text in (("USING", qual), ("WITH CHECK", with_check)):
            if not text or text.strip() == "true":
                continue
            try:
                calls, columns = expression_calls_and_columns(text, table)
            except Exception as exc:  # pglast cannot parse: say so rather than pass silently
                findings.append(Finding("policy_unparsed", "low", f"policy {name} on public.{table}",
                                        f"{label} expression could not be analysed: {exc}", "Review it by hand."))
                continue
            for call in calls:
                if call not in functions:
                    continue  # a built-in (pg_catalog) function: cheap
                lang, volatile = functions[call]
                heavy = lang not in ("sql",) or volatile == "v"
                findings.append(Finding(
                    "per_row_function", "high" if heavy else "medium", f"policy {name} on public.{table}",
                    f"{label} calls {call}() ({lang}, {'volatile' if volatile == 'v' else 'stable/immutable'}) "
                    "once per row instead of once per statement; large tables miss the 500 ms SLA.",
                    f"Wrap it in a scalar sub-select: (select {call}(...)), or compare against a set computed "
                    "once: "
                    "organization_id = ANY (ARRAY(SELECT public.user_organization_ids()))."))
            for column in columns if label == "USING" else ():  # WITH CHECK tests new rows: no scan
                if column in table_columns and column not in indexed:
                    unindexed.setdefault((table, column), []).append(name)
    for (table, column), names in sorted(unindexed.items()):
        findings.append(Finding(
            "policy_column_without_index", "medium", f"public.{table}.{column}",
            f"Policies {', '.join(sorted(set(names)))} filter on {column}, which no valid index leads with: "
            "each statement may scan the table.",
            f"CREATE INDEX CONCURRENTLY ON public.{table} ({column});"))
    return findings


def audit_rls(conn) -> list[Finding]:
    """Every finding of the audit, most severe first (see module docstring)."""
    roles = _existing_roles(conn)
    policies = _policies(conn)
    findings = (_tables_without_rls(conn, roles) + _commands_without_policy(conn) + _with_check(policies)
                + _views_bypassing_rls(conn, roles) + _definer_without_search_path(conn)
                + _policy_expressions(conn, policies))
    # The registry's lints; where an older check above already names the same object, keep that one.
    named = {(f.object, f.code) for f in findings}
    for lint in run_lints(read_security_model(conn)):
        if lint.code == "policy_always_true" and {(lint.object, "policy_using_true"),
                                                  (lint.object, "policy_check_true")} & named:
            continue
        findings.append(lint)
    if not conn.autocommit:
        conn.rollback()
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.code, f.object))


__all__ = ["Finding", "audit_rls", "blocking", "new_findings", "policy_coverage"]
