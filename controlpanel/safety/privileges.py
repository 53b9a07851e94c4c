"""Preflight: does the connected role hold every privilege the bundle's statements and the panel's probes need?

Each statement of the forward files and the rollback (split by pglast, with the static SQL inside DO blocks)
is turned into what PostgreSQL will check when it runs: ownership of the table for ALTER TABLE, CREATE INDEX,
policy changes and DROP TRIGGER; TRIGGER for CREATE TRIGGER; REFERENCES for foreign keys; CREATE on the
schema for new objects; ownership of an existing function or view that is replaced or dropped; membership of
a role for SET ROLE. Files are walked in runbook order, forward then rollback, so an object the bundle
created earlier counts as the role's own (its creator owns it). A need on an object that does not exist and
is not created by the bundle is skipped when the statement says IF EXISTS (PostgreSQL skips it too).
"""

from dataclasses import dataclass
from pathlib import Path

import pglast
from pglast import ast
from pglast.enums import ObjectType

from controlpanel.targets import privileges as catalog
from controlpanel.targets.sqlscript import ScriptError, line_of, load_script

API_ROLES = ("anon", "authenticated", "service_role")
OWNER = "owner"

# LOCK TABLE's own rule (lockcmds.c): ACCESS SHARE needs SELECT, ROW EXCLUSIVE any write privilege,
# stronger modes UPDATE, DELETE or TRUNCATE.
_LOCK_PRIVILEGES: dict[int, tuple[str, ...]] = {1: ("SELECT",), 3: ("INSERT", "UPDATE", "DELETE", "TRUNCATE")}
_LOCK_DEFAULT = ("UPDATE", "DELETE", "TRUNCATE")

_RELATION_DROPS = {ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_INDEX,
                   ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_FOREIGN_TABLE}
_CHILD_DROPS = {ObjectType.OBJECT_TRIGGER: "trigger", ObjectType.OBJECT_POLICY: "policy",
                ObjectType.OBJECT_RULE: "rule"}
_FUNCTION_DROPS = {ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE, ObjectType.OBJECT_ROUTINE}


@dataclass(frozen=True)
class Need:
    privilege: tuple[str, ...]  # any one of them; ("owner",) for ownership; ("member",) for SET ROLE
    kind: str  # relation | schema | function | role
    name: str  # schema.name, or a role name
    if_exists: bool = False  # IF EXISTS: only needed when the object (or `child`) exists
    child: tuple[str, str] | None = None  # (kind, name) of a trigger/policy on the relation being dropped

    def describe(self) -> str:
        what = {"relation": "", "schema": "schema ", "function": "function ", "role": "role "}[self.kind]
        if self.privilege == (OWNER,):
            return f"ownership of {what}{self.name}"
        if self.privilege == ("member",):
            return f"membership in role {self.name} (SET ROLE)"
        return f"{' or '.join(self.privilege)} on {what}{self.name}"


@dataclass(frozen=True)
class StatementNeeds:
    file: str
    line: int
    statement: str
    needs: tuple[Need, ...]
    creates: tuple[tuple[str, str], ...]  # (kind, name) this statement creates


@dataclass(frozen=True)
class Missing:
    file: str
    line: int
    statement: str
    need: Need
    why: str  # what the catalog says (owner, what the role has)

    @property
    def object(self) -> str:
        return self.need.name


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema or 'public'}.{name}"


def _rangevar(rv) -> str:
    return _qualified(rv.schemaname, rv.relname)


def _names(parts) -> list[str]:
    return [p.sval for p in parts]


def _dotted(parts) -> str:
    names = _names(parts)
    return _qualified(names[-2] if len(names) > 1 else None, names[-1])


def _schema_of(name: str) -> str:
    return name.rpartition(".")[0]


def _foreign_keys(constraints) -> list[Need]:
    return [Need(("REFERENCES", ), "relation", _rangevar(c.pktable))
            for c in constraints or () if isinstance(c, ast.Constraint) and c.pktable is not None]


def _derive(node) -> tuple[list[Need], list[tuple[str, str]]]:
    """(needs, creates) of one parsed statement."""
    needs, creates = [], []
    if isinstance(node, ast.CreateStmt):
        table = _rangevar(node.relation)
        creates.append(("relation", table))
        needs.append(Need(("CREATE",), "schema", _schema_of(table)))
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                needs += _foreign_keys(element.constraints)
            elif isinstance(element, ast.Constraint):
                needs += _foreign_keys([element])
        if node.if_not_exists:  # an existing table is left alone: needed only when it is new
            needs = [Need(n.privilege, n.kind, n.name, True, ("absent", table)) for n in needs]
    elif isinstance(node, ast.AlterTableStmt):
        table = _rangevar(node.relation)
        needs.append(Need((OWNER,), "relation", table, bool(node.missing_ok)))
        for cmd in node.cmds or ():
            definition = getattr(cmd, "def_", None)
            if isinstance(definition, ast.Constraint):
                needs += _foreign_keys([definition])
            elif isinstance(definition, ast.ColumnDef):
                needs += _foreign_keys(definition.constraints)
    elif isinstance(node, ast.IndexStmt) and node.relation is not None:
        needs.append(Need((OWNER,), "relation", _rangevar(node.relation)))
        if node.idxname:
            creates.append(("relation", _qualified(node.relation.schemaname, node.idxname)))
    elif isinstance(node, ast.ReindexStmt) and node.relation is not None:
        needs.append(Need((OWNER,), "relation", _rangevar(node.relation)))
    elif isinstance(node, ast.CreateTrigStmt):
        table = _rangevar(node.relation)
        needs.append(Need(("TRIGGER",), "relation", table))
        needs.append(Need(("EXECUTE",), "function", _dotted(node.funcname)))
        creates.append(("trigger", f"{table}.{node.trigname}"))
    elif isinstance(node, ast.CreatePolicyStmt | ast.AlterPolicyStmt):
        needs.append(Need((OWNER,), "relation", _rangevar(node.table)))
    elif isinstance(node, ast.DropStmt):
        kind = node.removeType  # an ObjectType member (pglast converts the parser's int)
        for obj in node.objects or ():
            if kind in _CHILD_DROPS:
                parts = _names(obj)
                table = _qualified(parts[-3] if len(parts) > 2 else None, parts[-2])
                child = (_CHILD_DROPS[kind], f"{table}.{parts[-1]}")
                needs.append(Need((OWNER,), "relation", table, bool(node.missing_ok), child))
            elif kind in _RELATION_DROPS:
                needs.append(Need((OWNER,), "relation", _dotted(obj), bool(node.missing_ok)))
            elif kind in _FUNCTION_DROPS:
                needs.append(Need((OWNER,), "function", _dotted(obj.objname), bool(node.missing_ok)))
            elif kind == ObjectType.OBJECT_SCHEMA:
                needs.append(Need((OWNER,), "schema", obj.sval, bool(node.missing_ok)))
    elif isinstance(node, ast.CreateFunctionStmt):
        function = _dotted(node.funcname)
        needs.append(Need(("CREATE",), "schema", _schema_of(function)))
        if node.replace:
            needs.append(Need((OWNER,), "function", function, True))
        creates.append(("function", function))
    elif isinstance(node, ast.ViewStmt):
        view = _rangevar(node.view)
        needs.append(Need(("CREATE",), "schema", _schema_of(view)))
        if node.replace:
            needs.append(Need((OWNER,), "relation", view, True))
        creates.append(("relation", view))
    elif isinstance(node, ast.LockStmt):
        privilege = _LOCK_PRIVILEGES.get(node.mode, _LOCK_DEFAULT) if node.mode is not None else _LOCK_DEFAULT
        needs += [Need(privilege, "relation", _rangevar(rv)) for rv in node.relations or ()]
    elif isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
        action = {ast.InsertStmt: "INSERT", ast.UpdateStmt: "UPDATE", ast.DeleteStmt: "DELETE"}[type(node)]
        needs.append(Need((action,), "relation", _rangevar(node.relation)))
    elif isinstance(node, ast.TruncateStmt):
        needs += [Need(("TRUNCATE",), "relation", _rangevar(rv)) for rv in node.relations or ()]
    elif isinstance(node, ast.CallStmt) and node.funccall is not None:
        needs.append(Need(("EXECUTE",), "function", _dotted(node.funccall.funcname)))
    elif isinstance(node, ast.VariableSetStmt) and node.name == "role" and node.args:
        value = node.args[0].val
        if isinstance(value, ast.String) and value.sval is not None and value.sval.lower() != "none":
            needs.append(Need(("member",), "role", value.sval))
    return needs, creates


def _plpgsql_statements(body: str) -> list[tuple[int, str]]:
    """(line within body, SQL) of the static statements in a DO body and of EXECUTE of a constant string."""
    try:
        tree = pglast.parse_plpgsql(f"CREATE FUNCTION pg_temp.cp_do() RETURNS void LANGUAGE plpgsql AS $cp_do${body}"
                                    f"$cp_do$")
    except pglast.parser.ParseError:
        return []
    found = []

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "PLpgSQL_stmt_execsql":
                    found.append((inner.get("lineno", 1), inner["sqlstmt"]["PLpgSQL_expr"]["query"]))
                elif key == "PLpgSQL_stmt_dynexecute":
                    constant = _constant_string(inner["query"]["PLpgSQL_expr"]["query"])
                    if constant:
                        found.append((inner.get("lineno", 1), constant))
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(tree)
    return found


def _constant_string(expression: str) -> str | None:
    try:
        stmt = pglast.parse_sql(f"SELECT {expression}")[0].stmt
    except pglast.parser.ParseError:
        return None
    if not isinstance(stmt, ast.SelectStmt) or not stmt.targetList:
        return None
    target = stmt.targetList[0].val
    return target.val.sval if isinstance(target, ast.A_Const) and isinstance(target.val, ast.String) else None


def statement_needs(path: Path) -> list[StatementNeeds]:
    """What every statement of one file needs (DO blocks: each static statement inside, at its own line)."""
    script = load_script(path)
    result = []
    for statement in script.statements:
        node = pglast.parse_sql(statement.text)[0].stmt
        if isinstance(node, ast.DoStmt):
            body = next((a.arg.sval for a in node.args or () if a.defname == "as"), "")
            start = statement.line + line_of(statement.text, max(statement.text.find(body), 0)) - 1
            for lineno, text in _plpgsql_statements(body):
                try:
                    inner = [r.stmt for r in pglast.parse_sql(text)]
                except pglast.parser.ParseError:
                    continue
                for sub in inner:
                    needs, creates = _derive(sub)
                    if needs or creates:
                        result.append(StatementNeeds(script.name, start + lineno - 1, text.strip(),
                                                     tuple(needs), tuple(creates)))
            continue
        needs, creates = _derive(node)
        if needs or creates:
            result.append(StatementNeeds(script.name, statement.line, statement.text.strip(), tuple(needs),
                                         tuple(creates)))
    return result


class _Facts:
    """The catalog facts for every object the needs name, read in four queries."""

    def __init__(self, conn, entries: list[StatementNeeds]):
        needs = [n for e in entries for n in e.needs]
        self.role = catalog.role_facts(conn, [n.name for n in needs if n.kind == "role"] + list(API_ROLES))
        self.relations = catalog.relations(conn, [n.name for n in needs if n.kind == "relation"])
        self.schemas = catalog.schemas(conn, [n.name for n in needs if n.kind == "schema"])
        self.functions = catalog.functions(conn, [n.name for n in needs if n.kind == "function"])
        children: dict[str, list[tuple[str, str]]] = {}
        for n in needs:
            if n.child and n.child[0] in ("trigger", "policy"):
                table, _, name = n.child[1].rpartition(".")
                children.setdefault(n.child[0], []).append((table, name))
        self.children = {kind: catalog.table_children(conn, kind, keys) for kind, keys in children.items()}

    def child_exists(self, kind: str, qualified: str) -> bool:
        table, _, name = qualified.rpartition(".")
        return (table, name) in self.children.get(kind, set())


def _judge(need: Need, facts: _Facts, created: set) -> str | None:
    """None when the role has what `need` asks; else what the catalog says instead."""
    role = facts.role
    if role.superuser:
        return None
    if need.kind == "role":
        return None if need.name in role.member_of else f"{role.name} is not a member of {need.name}"
    if (need.kind, need.name) in created:
        return None  # made earlier by the bundle: the role owns it
    if need.child and need.child[0] == "absent":
        if facts.relations.get(need.child[1], catalog.Relation(need.child[1], False)).exists:
            return None  # IF NOT EXISTS on an existing table: nothing is created
    if need.kind == "relation":
        rel = facts.relations.get(need.name) or catalog.Relation(need.name, False)
        if need.child and need.child[0] != "absent":
            child_there = (need.child in created) or facts.child_exists(*need.child)
            if need.if_exists and not child_there:
                return None
        if not rel.exists:
            return None if need.if_exists or need.child else f"{need.name} does not exist (or is not visible)"
        if need.privilege == (OWNER,):
            return None if rel.owned else f"{need.name} is owned by {rel.owner}, not by {role.name}"
        if any(rel.may(p) for p in need.privilege):
            return None
        held = ", ".join(sorted(rel.privileges)) or "no privilege"
        return f"{role.name} has {held} on {need.name} (owner {rel.owner})"
    if need.kind == "schema":
        schema = facts.schemas.get(need.name) or catalog.Schema(need.name, False)
        if not schema.exists:
            return None if need.if_exists else f"schema {need.name} does not exist"
        if need.privilege == (OWNER,):
            return None if schema.owned else f"schema {need.name} is owned by {schema.owner}, not by {role.name}"
        return None if schema.owned or schema.create else (
            f"{role.name} lacks CREATE on schema {need.name} (owner {schema.owner})")
    if need.kind == "function":
        function = facts.functions.get(need.name) or catalog.Function(need.name, False)
        if not function.exists:
            return None  # a function created later in the file or dropped IF EXISTS: PostgreSQL decides
        if need.privilege == (OWNER,):
            return None if function.owned else (
                f"function {need.name} is owned by {', '.join(function.owners)}, not by {role.name}")
        return None if function.execute else f"{role.name} lacks EXECUTE on function {need.name}"
    return None


def missing_privileges(conn, paths: list[Path]) -> tuple[list[Missing], int]:
    """(every missing privilege in file order, the number of statements checked)."""
    entries = [entry for path in paths for entry in statement_needs(path)]
    facts = _Facts(conn, entries)
    created: set = set()
    missing = []
    for entry in entries:
        for need in entry.needs:
            why = _judge(need, facts, created)
            if why:
                missing.append(Missing(entry.file, entry.line, entry.statement, need, why))
        created.update(entry.creates)
    return missing, len(entries)


def panel_needs(conn) -> list[tuple[str, str]]:
    """(what, why missing) for the panel's own probes: SET ROLE to the API roles, auth.uid() callable."""
    role = catalog.role_facts(conn, API_ROLES)
    found = []
    if not role.superuser:
        found += [(f"membership in role {r} (the isolation probes SET ROLE {r})", f"{role.name} is not a member")
                  for r in API_ROLES if r not in role.member_of]
    for r in (role.name, "authenticated", "anon"):
        if catalog.role_may_execute(conn, r, "auth.uid()") is False:
            found.append((f"EXECUTE on auth.uid() for {r} (every owner policy calls it)", f"{r} may not call it"))
    return found


def _short(statement: str) -> str:
    line = " ".join(statement.split())
    return line if len(line) <= 160 else line[:157] + "…"


def privilege_checks(conn, directory: Path, files: list[str], make_check) -> list[dict]:
    """Preflight lines: one NO-GO per missing privilege (file, line, statement, object), else one GO."""
    try:
        missing, checked = missing_privileges(conn, [directory / name for name in files])
    except (ScriptError, OSError):
        return []  # the preflight's parse check already names the file that cannot be read
    checks = [make_check(
        f"privileges.{m.file}:{m.line}", f"{m.file} line {m.line} needs {m.need.describe()}", "no-go",
        f"{m.file} line {m.line}: `{_short(m.statement)}` needs {m.need.describe()}: {m.why}",
        file=m.file, line=m.line, statement=m.statement, object=m.object, privilege=list(m.need.privilege))
        for m in missing]
    checks += [make_check("privileges.panel", f"The panel needs {what}", "no-go", f"{what}: {why}")
               for what, why in panel_needs(conn)]
    role = catalog.role_facts(conn)
    stats = next(p for p in catalog.panel_privileges(conn, API_ROLES) if p.name == catalog.STATS_ROLE)
    warnings = [] if stats.held else [make_check(
        "privileges.stats", f"{role.name} lacks {catalog.STATS_ROLE}", "warn",
        f"Other roles' sessions show no state, transaction start or query to {role.name}: the long-transaction "
        f"check sees only its own sessions, and lock views read 'query hidden'. Grant {catalog.STATS_ROLE} "
        "to see them (waiters are still found through pg_locks).")]
    if not checks:
        checks.append(make_check(
            "privileges", "Privileges of the connected role", "go",
            f"{checked} statements of {len(files)} files checked as {role.name}"
            f"{' (superuser)' if role.superuser else ''}: every ownership and privilege they need is held"))
    return checks + warnings
