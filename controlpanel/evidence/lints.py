"""Static lints of a target's policies, functions, views and indexes: one registry, each lint a small pure function.

Input: a `targets.security.SecurityModel` (read once from the catalog). Output: `Finding`s whose `key`
(code + object) is stable across snapshots, so `new_findings(before, after)` attributes to a migration only
what it introduced. Policy expressions and SQL function bodies are read through pglast parse trees.

Parity with Supabase's Splinter (its lint name → ours): rls_disabled_in_public → table_without_rls (rls_audit);
policy_exists_rls_disabled; rls_enabled_no_policy; security_definer_view → view_bypasses_rls (rls_audit);
function_search_path_mutable (definer: definer_without_search_path in rls_audit); anon/authenticated
security_definer_function_executable → definer_executable_by_api; rls_policy_always_true; multiple_permissive_policies;
auth_rls_initplan → per_row_function (rls_audit); unindexed_foreign_keys; auth_users_exposed;
rls_references_user_metadata; duplicate_index; plus invalid_index. Beyond any linter: policy_recursion,
membership_self_escalation, null_disjunct, inner_binding (a bare column in a policy sub-select that binds to
the inner table although the outer table has it too).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass

from pglast import ast, parse_sql
from pglast.enums import BoolExprType, NullTestType
from pglast.parser import ParseError

from controlpanel.targets import tenancy
from controlpanel.targets.security import SecurityModel
from controlpanel.targets.sqltree import function_body_sql, names, parse_expression, relations_read, walk

SEVERITIES = ("critical", "high", "medium", "low")
TENANT = set(tenancy.TENANT_TABLES + tenancy.OPTIONAL_TENANT_TABLES + tenancy.ORGANIZATION_TABLES)
AUTH_UID = {"auth.uid", "uid"}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    object: str
    message: str
    fix: str

    @property
    def key(self) -> str:
        """Stable across snapshots of the same schema (no counts, no oids)."""
        return f"{self.code}|{self.object}"

    def as_dict(self) -> dict:
        return asdict(self) | {"key": self.key}


@dataclass(frozen=True)
class Lint:
    code: str
    title: str
    check: Callable[[SecurityModel], list[Finding]]


def new_findings(before: list, after: list) -> list:
    """Findings of `after` whose key is not in `before` (Findings or their dicts): what the migration added."""
    def key(f):
        return f["key"] if isinstance(f, dict) else f.key

    seen = {key(f) for f in before}
    return [f for f in after if key(f) not in seen]


# --- policy expression helpers ---------------------------------------------------------------------

def _expr(text: str | None):
    if not text:
        return None
    try:
        return parse_expression(text)
    except ParseError:
        return None


def _disjuncts(node) -> list:
    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.OR_EXPR:
        return [d for arg in node.args or () for d in _disjuncts(arg)]
    return [node]


def _is_true(node) -> bool:
    """`true`, or an OR with a `true` arm."""
    return any(isinstance(d, ast.A_Const) and isinstance(d.val, ast.Boolean) and d.val.boolval
               for d in _disjuncts(node))


def _is_auth_uid(node) -> bool:
    """auth.uid() or (select auth.uid())."""
    if isinstance(node, ast.FuncCall):
        return ".".join(names(node.funcname)) in AUTH_UID
    if isinstance(node, ast.SubLink) and isinstance(node.subselect, ast.SelectStmt):
        targets = node.subselect.targetList or ()
        return len(targets) == 1 and _is_auth_uid(targets[0].val)
    return False


def _null_disjunct(node) -> str | None:
    """`organization_id IS NULL` or `auth.uid() IS NULL` as one arm of an OR: rows (or callers) without a
    tenant pass the policy."""
    arms = _disjuncts(node)
    for arm in arms if len(arms) > 1 else ():
        if isinstance(arm, ast.NullTest) and arm.nulltesttype == NullTestType.IS_NULL:
            if isinstance(arm.arg, ast.ColumnRef) and names(arm.arg.fields)[-1:] == ["organization_id"]:
                return "organization_id IS NULL"
            if _is_auth_uid(arm.arg):
                return "auth.uid() IS NULL"
    return None


def _check_expression(policy):
    """What a writable policy lets a new row be: WITH CHECK, or USING when there is none (PostgreSQL's rule)."""
    return policy.with_check if policy.with_check is not None else policy.qual


def _writable(policy) -> bool:
    return policy.cmd in ("INSERT", "UPDATE", "ALL")


# --- the lints -------------------------------------------------------------------------------------

def policy_exists_rls_disabled(model: SecurityModel) -> list[Finding]:
    with_policies = {(p.schema, p.table) for p in model.policies}
    return [Finding("policy_exists_rls_disabled", "critical" if t.name in TENANT else "high", t.qualified,
                    "Policies exist but row level security is disabled: they are ignored and every row is exposed.",
                    f"ALTER TABLE {t.qualified} ENABLE ROW LEVEL SECURITY;")
            for t in model.tables if t.schema == "public" and not t.rls and (t.schema, t.name) in with_policies]


def rls_enabled_no_policy(model: SecurityModel) -> list[Finding]:
    with_policies = {(p.schema, p.table) for p in model.policies}
    return [Finding("rls_enabled_no_policy", "low", t.qualified,
                    "RLS is enabled but no policy exists: every API statement on it is denied. Intended?",
                    f"Add policies to {t.qualified}, or REVOKE the API roles' privileges to make it explicit.")
            for t in model.tables if t.schema == "public" and t.rls and (t.schema, t.name) not in with_policies]


def function_search_path_mutable(model: SecurityModel) -> list[Finding]:
    """Invoker functions (definer ones are rls_audit's definer_without_search_path)."""
    return [Finding("function_search_path_mutable", "low", f"function {f.signature}",
                    "Function without a fixed search_path: what its unqualified names mean depends on the caller.",
                    f"ALTER FUNCTION {f.signature} SET search_path = '';")
            for f in model.functions if f.schema == "public" and not f.security_definer and not f.fixed_search_path
            and f.language in ("sql", "plpgsql")]


def definer_executable_by_api(model: SecurityModel) -> list[Finding]:
    findings = []
    for f in model.functions:
        if f.schema != "public" or not f.security_definer or not f.executable_by:
            continue
        anon = "anon" in f.executable_by
        if not f.fixed_search_path:
            severity, why = "critical", "and has no fixed search_path: a caller can make it run their objects"
        elif anon:
            severity, why = "medium", "including anonymous callers: make sure it reveals nothing about other users"
        else:
            severity, why = "low", "by every signed-in user"
        findings.append(Finding(
            "definer_executable_by_api", severity, f"function {f.signature}",
            f"SECURITY DEFINER function executable by {', '.join(f.executable_by)} {why}; it runs with its owner's "
            "rights (RLS bypassed).",
            f"REVOKE EXECUTE ON FUNCTION {f.signature} FROM PUBLIC, anon"
            + ("" if f.fixed_search_path else f"; ALTER FUNCTION {f.signature} SET search_path = ''")))
    return findings


def _api_permissive_expressions(model: SecurityModel):
    """(policy, "USING" | "WITH CHECK", parsed expression) of every permissive policy the API roles meet."""
    for p in model.policies:
        if not p.for_api or not p.permissive:
            continue
        for label, text in (("USING", p.qual), ("WITH CHECK", p.with_check)):
            node = _expr(text)
            if node is not None:
                yield p, label, node


def policy_always_true(model: SecurityModel) -> list[Finding]:
    findings = []
    for p, label, node in _api_permissive_expressions(model):
        if _is_true(node):
            findings.append(Finding(
                "policy_always_true", "critical" if p.table in TENANT else "high", p.label,
                f"{label} is always true for {', '.join(p.roles)} (FOR {p.cmd}): the policy restricts nothing.",
                f"Restrict it to the caller's organizations or drop policy {p.name}."))
    return findings


def null_disjunct(model: SecurityModel) -> list[Finding]:
    findings = []
    for p, label, node in _api_permissive_expressions(model):
        arm = _null_disjunct(node)
        if arm:
            findings.append(Finding(
                "null_disjunct", "critical", p.label,
                f"{label} has `{arm} OR …`: " + ("every row without an organization is visible to (or writable "
                                                  "by) every user" if arm.startswith("organization") else
                                                  "a caller without a user id (anon) passes") + ".",
                f"Remove the `{arm}` arm from policy {p.name}; backfill rows first, then make the column "
                "NOT NULL."))
    return findings


def multiple_permissive_policies(model: SecurityModel) -> list[Finding]:
    by: dict[tuple, list[str]] = {}
    for p in model.policies:
        if not p.permissive:
            continue
        for role in p.roles:
            for cmd in (("SELECT", "INSERT", "UPDATE", "DELETE") if p.cmd == "ALL" else (p.cmd,)):
                by.setdefault((p.schema, p.table, role, cmd), []).append(p.name)
    return [Finding("multiple_permissive_policies", "low", f"{schema}.{table} FOR {cmd} TO {role}",
                    f"{len(found)} permissive policies ({', '.join(sorted(found))}) apply to the same role and "
                    "command: each is evaluated per statement and OR-ed, which is slower and easy to widen.",
                    "Merge them into one policy per role and command.")
            for (schema, table, role, cmd), found in sorted(by.items()) if len(found) > 1]


def unindexed_foreign_keys(model: SecurityModel) -> list[Finding]:
    findings = []
    for fk in model.foreign_keys:
        covered = any(ix.table == fk.table and ix.valid and ix.leading[:len(fk.columns)] == fk.columns
                      for ix in model.indexes)
        if not covered:
            findings.append(Finding(
                "unindexed_foreign_keys", "low", f"{fk.table}.{fk.name}",
                f"Foreign key ({', '.join(fk.columns)}) → {fk.references} has no index leading with its columns: "
                "deletes on the referenced table scan this one.",
                f"CREATE INDEX CONCURRENTLY ON {fk.table} ({', '.join(fk.columns)});"))
    return findings


def auth_users_exposed(model: SecurityModel) -> list[Finding]:
    return [Finding("auth_users_exposed", "critical", f"{v.schema}.{v.name}",
                    f"View over auth.users readable by {', '.join(v.readers)}: user accounts (emails) are exposed "
                    "through the API.",
                    f"REVOKE ALL ON {v.schema}.{v.name} FROM anon, authenticated (or drop the view).")
            for v in model.views if "auth.users" in v.bases and v.readers]


def rls_references_user_metadata(model: SecurityModel) -> list[Finding]:
    findings = []
    for p in model.policies:
        for text in (p.qual, p.with_check):
            node = _expr(text)
            if node is None:
                continue
            hit = any(isinstance(n, ast.ColumnRef) and "raw_user_meta_data" in names(n.fields)
                      or isinstance(n, ast.A_Const) and isinstance(n.val, ast.String)
                      and n.val.sval in ("user_metadata", "raw_user_meta_data") for n, _ in walk(node))
            if hit:
                findings.append(Finding(
                    "rls_references_user_metadata", "high", p.label,
                    "The policy reads user metadata, which the user can edit: anyone can grant themselves access.",
                    "Base the policy on memberships (or app_metadata), never user_metadata."))
                break
    return findings


def invalid_and_duplicate_indexes(model: SecurityModel) -> list[Finding]:
    findings = [Finding("invalid_index", "medium", f"{ix.table}.{ix.name}",
                        "Invalid index (an interrupted CONCURRENTLY build): maintained on every write, never used.",
                        f"DROP INDEX CONCURRENTLY {ix.table.split('.')[0]}.{ix.name}; then build it again.")
                for ix in model.indexes if not ix.valid]
    seen: dict[tuple, str] = {}
    for ix in model.indexes:
        if not ix.valid:
            continue
        twin = seen.setdefault((ix.table, ix.key), ix.name)
        if twin != ix.name:
            findings.append(Finding("duplicate_index", "low", f"{ix.table}.{ix.name}",
                                    f"Same definition as {twin}: twice the write cost for nothing.",
                                    f"DROP INDEX CONCURRENTLY {ix.table.split('.')[0]}.{ix.name};"))
    return findings


def _invoker_tables(model: SecurityModel, node) -> dict[str, set[str]]:
    """function name -> tables its SQL body reads, for SECURITY INVOKER functions called in `node`."""
    out = {}
    for n, _ in walk(node):
        if not isinstance(n, ast.FuncCall):
            continue
        name = ".".join(names(n.funcname))
        for f in model.functions_named(name):
            if f.security_definer:
                continue  # runs as its owner: the table's own policies do not apply (no recursion)
            tables: set[str] = set()
            for text in function_body_sql(f.language, f.source):
                try:
                    tables |= relations_read(parse_sql(text))
                except ParseError:
                    continue
            out[f.signature] = tables
    return out


def policy_recursion(model: SecurityModel) -> list[Finding]:
    findings = []
    for p in model.policies:
        if not p.for_api:
            continue
        own = f"{p.schema}.{p.table}"
        for label, text in (("USING", p.qual), ("WITH CHECK", p.with_check)):
            node = _expr(text)
            if node is None:
                continue
            via = None
            if own in relations_read(node):
                via = "a sub-select on the same table"
            else:
                via = next((f"SECURITY INVOKER function {sig}" for sig, tables in _invoker_tables(model, node).items()
                            if own in tables), None)
            if via:
                findings.append(Finding(
                    "policy_recursion", "critical", p.label,
                    f"{label} reads {own} through {via}: the table's policies apply again inside it — "
                    "'infinite recursion detected in policy' for every query.",
                    "Read the table through a SECURITY DEFINER helper with a fixed search_path "
                    "(e.g. organization_id = ANY (ARRAY(SELECT public.user_organization_ids())))."))
                break
    return findings


def _membership_tables(model: SecurityModel) -> set[str]:
    """Tables that give users a role in an organization: user_id + organization_id + role columns."""
    return {t.name for t in model.tables if t.schema == "public"
            and {"user_id", "organization_id", "role"} <= set(t.columns)}


def _restricted_to_administered(node, membership: set[str]) -> bool:
    """An arm that only admits organizations the caller administers: an admin/owner helper, or a sub-select on
    the membership table that tests the role column."""
    for n, _ in walk(node):
        if isinstance(n, ast.FuncCall) and any(w in ".".join(names(n.funcname)) for w in ("admin", "owner")):
            return True
        if isinstance(n, ast.SubLink) and {r.split(".")[-1] for r in relations_read(n)} & membership:
            if any(isinstance(c, ast.ColumnRef) and names(c.fields)[-1:] == ["role"] for c, _ in walk(n)):
                return True
    return False


def membership_self_escalation(model: SecurityModel) -> list[Finding]:
    membership = _membership_tables(model)
    findings = []
    for p in model.policies:
        if p.table not in membership or not p.for_api or not p.permissive or not _writable(p):
            continue
        node = _expr(_check_expression(p))
        if node is None:
            continue
        open_arms = [a for a in _disjuncts(node) if not _restricted_to_administered(a, membership)]
        if open_arms:
            findings.append(Finding(
                "membership_self_escalation", "critical", p.label,
                f"FOR {p.cmd}: a new membership row passes without the organization being one the caller "
                "administers — a user can add themselves to any organization or raise their own role.",
                f"Restrict policy {p.name}'s WITH CHECK to organization_id = ANY (ARRAY(SELECT "
                "public.user_admin_organization_ids())) and let a member only leave (DELETE) on their own."))
    return findings


def _inner_aliases(model: SecurityModel, select: ast.SelectStmt) -> dict[str, tuple[str, set[str]]]:
    """alias (or table name) -> (schema.table, its columns), for the tables in a sub-select's FROM."""
    out = {}
    for rv, _ in walk(select.fromClause or ()):
        if isinstance(rv, ast.RangeVar):
            table = model.table(f"{rv.schemaname or 'public'}.{rv.relname}")
            alias = rv.alias.aliasname if rv.alias else rv.relname
            if table and alias:
                out[alias] = (table.qualified, set(table.columns))
    return out


def _column(node) -> list[str] | None:
    """The name parts of a column reference (`m.id` → ["m", "id"]), None for any other expression."""
    return names(node.fields) if isinstance(node, ast.ColumnRef) else None


def _self_comparisons(select: ast.SelectStmt, aliases: dict[str, tuple[str, set[str]]]) -> set[tuple[str, str, str]]:
    """(alias, column, other column) for `alias.x = alias.y` and bare `y` (PostgreSQL prints the bare name it
    bound to the inner table qualified: `m.organization_id = id` is stored as `m.organization_id = m.id`)."""
    found = set()
    for n, _ in walk(select.whereClause):
        if not (isinstance(n, ast.A_Expr) and names(n.name) == ["="]):
            continue
        left, right = _column(n.lexpr), _column(n.rexpr)
        if left is None or right is None:
            continue
        if len(right) == 1 and len(left) == 2 and left[0] in aliases and right[0] in aliases[left[0]][1]:
            right = [left[0], right[0]]  # a bare column that exists in the inner table binds to it
        if len(left) == 1 and len(right) == 2 and right[0] in aliases and left[0] in aliases[right[0]][1]:
            left = [right[0], left[0]]
        if len(left) == 2 and len(right) == 2 and left[0] == right[0] and left[0] in aliases and left[1] != right[1]:
            found.add((left[0], left[1], right[1]))
    return found


def inner_binding(model: SecurityModel) -> list[Finding]:
    """`EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = id …)`: bare `id` is m.id, not the row's."""
    findings = []
    for p in model.policies:
        outer = model.table(f"{p.schema}.{p.table}")
        if outer is None or not p.for_api:
            continue
        hits = set()
        for text in (p.qual, p.with_check):
            node = _expr(text)
            for n, _ in walk(node) if node is not None else ():
                if isinstance(n, ast.SubLink) and isinstance(n.subselect, ast.SelectStmt):
                    aliases = _inner_aliases(model, n.subselect)
                    for alias, column, other in _self_comparisons(n.subselect, aliases):
                        if aliases[alias][0] != outer.qualified and other in outer.columns:
                            hits.add((aliases[alias][0], alias, column, other))
        for table, alias, column, other in sorted(hits):
            findings.append(Finding(
                "inner_binding", "high", f"{p.label}: {other}",
                f"`{alias}.{column} = {other}` compares {table} with itself: the bare `{other}` bound to "
                f"{table}.{other}, not to the policy's row {outer.qualified}.{other}.",
                f"Qualify the outer column: {alias}.{column} = {p.table}.{other}."))
    return findings


LINTS: tuple[Lint, ...] = (
    Lint("policy_exists_rls_disabled", "Policy exists but RLS is disabled", policy_exists_rls_disabled),
    Lint("rls_enabled_no_policy", "RLS enabled without a policy", rls_enabled_no_policy),
    Lint("function_search_path_mutable", "Function search_path mutable", function_search_path_mutable),
    Lint("definer_executable_by_api", "SECURITY DEFINER function executable by the API roles",
         definer_executable_by_api),
    Lint("policy_always_true", "Policy always true", policy_always_true),
    Lint("null_disjunct", "NULL organization / NULL user disjunct", null_disjunct),
    Lint("multiple_permissive_policies", "Multiple permissive policies", multiple_permissive_policies),
    Lint("unindexed_foreign_keys", "Unindexed foreign keys", unindexed_foreign_keys),
    Lint("auth_users_exposed", "auth.users exposed", auth_users_exposed),
    Lint("rls_references_user_metadata", "Policy reads user metadata", rls_references_user_metadata),
    Lint("invalid_and_duplicate_indexes", "Invalid and duplicate indexes", invalid_and_duplicate_indexes),
    Lint("policy_recursion", "Policy reads its own table", policy_recursion),
    Lint("membership_self_escalation", "Membership write without an administered organization",
         membership_self_escalation),
    Lint("inner_binding", "Bare column binds to the inner table", inner_binding),
)


def run_lints(model: SecurityModel) -> list[Finding]:
    findings = []
    for lint in LINTS:
        findings += lint.check(model)
    return findings
