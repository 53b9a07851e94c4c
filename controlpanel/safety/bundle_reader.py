"""What a bundle's forward files create and reference, read from pglast parse trees. Pure (no connection).

`analyse(scripts)` walks the forward files in runbook order, statement by statement, including the literal SQL
of DO blocks (EXECUTE 'literal' and plain statements), and returns:
- `references`: relations and functions a statement uses that the bundle has not created *before* it (each
  with file and line) — the preflight resolves them on the target;
- `created`: relations, columns, policies, functions the bundle creates (to recognise a migrated target);
- `unguarded`: CREATE POLICY / CREATE TRIGGER with no DROP … IF EXISTS before it and no OR REPLACE;
- `temp_tables`: CREATE TEMP TABLE (a progress table there dies with the session).
Function bodies are not followed (they resolve when called); references in a DO block that tests the catalog
(to_regclass, information_schema, pg_tables …) are guarded and not required.
"""

from dataclasses import dataclass, field

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ObjectType
from pglast.parser import ParseError

from controlpanel.runbook.definition import STEP1
from controlpanel.targets.sqlscript import load_script
from controlpanel.targets.sqltree import names, plpgsql_sql, walk

CATALOG_GUARDS = ("to_regclass", "to_regproc", "information_schema", "pg_tables", "pg_class", "pg_proc",
                  "pg_policies", "pg_policy", "pg_trigger", "pg_namespace", "if exists", "if not exists")


@dataclass(frozen=True)
class Ref:
    kind: str  # relation / function
    schema: str | None  # None: unqualified (resolved through the search_path)
    name: str
    file: str
    line: int
    statement_index: int

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class Located:
    what: str
    file: str
    line: int
    statement_index: int


@dataclass
class Analysis:
    references: list[Ref] = field(default_factory=list)
    created_relations: set[tuple[str | None, str]] = field(default_factory=set)
    created_columns: set[tuple[str, str]] = field(default_factory=set)  # (schema.table, column)
    created_policies: set[tuple[str, str]] = field(default_factory=set)  # (schema.table, name)
    created_functions: set[str] = field(default_factory=set)  # schema.name
    unguarded: list[Located] = field(default_factory=list)
    temp_tables: list[Located] = field(default_factory=list)

    def is_created(self, schema: str | None, name: str) -> bool:
        return (schema, name) in self.created_relations or any(
            n == name and (schema is None or s in (schema, None)) for s, n in self.created_relations)


def _qualified(rv) -> str:
    return f"{rv.schemaname or 'public'}.{rv.relname}"


def _cte_names(node) -> set[str]:
    return {n.ctename for n, _ in walk(node) if isinstance(n, ast.CommonTableExpr) and n.ctename}


def _new_relation(node) -> ast.RangeVar | None:
    """The RangeVar naming the relation a CREATE TABLE / TABLE AS / VIEW / SEQUENCE statement makes."""
    if isinstance(node, ast.CreateStmt):
        return node.relation
    if isinstance(node, ast.CreateTableAsStmt):
        return node.into.rel if node.into is not None else None
    if isinstance(node, ast.ViewStmt):
        return node.view
    if isinstance(node, ast.CreateSeqStmt):
        return node.sequence
    return None


class _Walker:
    def __init__(self, analysis: Analysis):
        self.a = analysis
        self.dropped_policies: set[tuple[str, str]] = set()
        self.dropped_triggers: set[tuple[str, str]] = set()

    # one statement; `where` = (file, line, statement_index); `guarded`: inside a DO block that tests the catalog
    def statement(self, node, where, guarded=False):
        file, line, index = where
        if isinstance(node, ast.DoStmt):
            text = _do_text(node)
            inner_guard = guarded or any(g in text.lower() for g in CATALOG_GUARDS)
            for embedded in plpgsql_sql(f"DO $__do__${text}$__do__$;") if text else ():
                if not embedded.literal:
                    continue
                try:
                    parsed = parse_sql(embedded.text)
                except ParseError:
                    continue
                for raw in parsed:
                    self.statement(raw.stmt, (file, line + max(embedded.line - 1, 0), index), inner_guard)
            return
        if isinstance(node, ast.CreateFunctionStmt):
            parts = names(node.funcname)
            self.a.created_functions.add(".".join(parts) if len(parts) > 1 else f"public.{parts[0]}")
            return  # the body resolves when it is called
        created_here = self._creates(node, where)
        ctes = _cte_names(node)
        if guarded:
            return
        for n, _ in walk(node):
            if isinstance(n, ast.RangeVar) and n.relname not in ctes and id(n) not in created_here:
                if not self.a.is_created(n.schemaname, n.relname) and not _missing_ok(node):
                    self.a.references.append(Ref("relation", n.schemaname, n.relname, file, line, index))
            elif isinstance(n, ast.FuncCall) or isinstance(n, ast.CreateTrigStmt):
                parts = names(n.funcname)
                if len(parts) == 2 and parts[0] not in ("pg_catalog",):
                    if f"{parts[0]}.{parts[1]}" not in self.a.created_functions:
                        self.a.references.append(Ref("function", parts[0], parts[1], file, line, index))

    def _creates(self, node, where) -> set[int]:
        """Records what `node` creates; returns ids of the RangeVars that name the new object itself."""
        file, line, index = where
        a = self.a
        rv = _new_relation(node)
        if rv is not None and rv.relname:
            temp = rv.relpersistence == "t"
            a.created_relations.add((None if temp else rv.schemaname or "public", rv.relname))
            if temp:
                a.temp_tables.append(Located(f"TEMP table {rv.relname}", file, line, index))
            return {id(rv)}
        if isinstance(node, ast.IndexStmt) and node.idxname and node.relation is not None:
            a.created_relations.add((node.relation.schemaname or "public", node.idxname))
        if isinstance(node, ast.AlterTableStmt):
            for cmd in node.cmds or ():
                if (cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef)
                        and cmd.def_.colname):
                    a.created_columns.add((_qualified(node.relation), cmd.def_.colname))
        if isinstance(node, ast.DropStmt) and node.missing_ok:
            kind = node.removeType  # an ObjectType member (pglast converts the parser's int)
            for obj in node.objects or ():
                parts = names(obj) if isinstance(obj, tuple | list) else []
                if len(parts) >= 2:
                    table = ".".join(parts[:-1]) if len(parts) > 2 else f"public.{parts[0]}"
                    if kind == ObjectType.OBJECT_POLICY:
                        self.dropped_policies.add((table, parts[-1]))
                    elif kind == ObjectType.OBJECT_TRIGGER:
                        self.dropped_triggers.add((table, parts[-1]))
        if isinstance(node, ast.CreatePolicyStmt) and node.policy_name:
            key = (_qualified(node.table), node.policy_name)
            a.created_policies.add(key)
            if key not in self.dropped_policies:
                a.unguarded.append(Located(f"CREATE POLICY {node.policy_name} ON {key[0]}", file, line, index))
        if isinstance(node, ast.CreateTrigStmt) and node.trigname:
            key = (_qualified(node.relation), node.trigname)
            if not node.replace and key not in self.dropped_triggers:
                a.unguarded.append(Located(f"CREATE TRIGGER {node.trigname} ON {key[0]}", file, line, index))
        return set()


def _missing_ok(node) -> bool:
    return bool(getattr(node, "missing_ok", False)) and isinstance(node, ast.AlterTableStmt)


def _do_text(node) -> str:
    for arg in node.args or ():
        if isinstance(arg, ast.DefElem) and arg.defname == "as" and isinstance(arg.arg, ast.String):
            return arg.arg.sval or ""
    return ""


def analyse(scripts) -> Analysis:
    """Scripts (targets.sqlscript.Script) in runbook order."""
    analysis = Analysis()
    walker = _Walker(analysis)
    for script in scripts:
        for statement in script.statements:
            try:
                parsed = parse_sql(statement.text)
            except ParseError:
                continue  # sqlscript already refused a file that does not parse
            for raw in parsed:
                walker.statement(raw.stmt, (script.name, statement.line, statement.index))
    return analysis


def created_routines(directory, files=None) -> list[str]:
    """schema.name of every function and procedure the forward files create: what check_functions checks."""
    names_ = files or [step.file for step in STEP1.steps]
    return sorted(analyse([load_script(directory / name) for name in names_]).created_functions)
