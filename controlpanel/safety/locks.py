"""Which lock each statement of a bundle file takes, and on which table: read from the pglast parse tree.

Pure (no connection): `estimate_script` gives one entry per statement; the preflight adds each table's
row estimate and size from the target's catalog. Statements whose locks are decided at run time (DO
blocks, procedures) say so: the rehearsal samples what they really take.
"""

from dataclasses import asdict, dataclass

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, ObjectType

from controlpanel.targets.sqltree import names, plpgsql_sql, walk

ACCESS_SHARE = "ACCESS SHARE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
SHARE = "SHARE"
SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

# PostgreSQL's lock strength order (only the modes statements here take).
STRENGTH = [ACCESS_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE]
BLOCKS = {
    ACCESS_SHARE: "blocks only ACCESS EXCLUSIVE (DDL)",
    ROW_EXCLUSIVE: "blocks SHARE and stronger (index builds, DDL); readers and writers continue",
    SHARE_UPDATE_EXCLUSIVE: "readers and writers continue; blocks other DDL/VACUUM",
    SHARE: "blocks writers (INSERT/UPDATE/DELETE); readers continue",
    SHARE_ROW_EXCLUSIVE: "blocks writers; readers continue",
    ACCESS_EXCLUSIVE: "blocks readers and writers",
}


@dataclass
class LockEstimate:
    table: str  # schema.name (pg_temp.name for a TEMP table)
    mode: str
    why: str
    duration: str  # "brief" (catalog only) / "scan" (reads the table) / "batches" / "build" / "rewrite"
    rule: str = ""  # the squawk rule this pattern breaks on a populated table (the preflight's NO-GO list)


# Defaults PostgreSQL must evaluate per row: ADD COLUMN … DEFAULT f() rewrites the whole table under
# ACCESS EXCLUSIVE (a constant or stable default is stored once in the catalog instead).
VOLATILE_DEFAULTS = {"clock_timestamp", "random", "gen_random_uuid", "uuid_generate_v4", "uuid_generate_v1",
                     "timeofday", "nextval", "txid_current", "statement_timestamp", "gen_random_bytes"}


def _volatile_default(column) -> str | None:
    for constraint in column.constraints or ():
        if isinstance(constraint, ast.Constraint) and constraint.contype == ConstrType.CONSTR_DEFAULT:
            for node, _ in walk(constraint.raw_expr):
                if isinstance(node, ast.FuncCall) and names(node.funcname)[-1] in VOLATILE_DEFAULTS:
                    return names(node.funcname)[-1]
    return None


def _name(rv) -> str:
    if rv is None:
        return "?"
    return f"{rv.schemaname or 'public'}.{rv.relname}"


def _strongest(modes):
    return max(modes, key=STRENGTH.index)


_ALTER_MODES = {
    AlterTableType.AT_AddColumn: (ACCESS_EXCLUSIVE, "ADD COLUMN", "brief"),
    AlterTableType.AT_ValidateConstraint: (SHARE_UPDATE_EXCLUSIVE, "VALIDATE CONSTRAINT", "scan"),
    AlterTableType.AT_EnableRowSecurity: (ACCESS_EXCLUSIVE, "ENABLE ROW LEVEL SECURITY", "brief"),
    AlterTableType.AT_DisableRowSecurity: (ACCESS_EXCLUSIVE, "DISABLE ROW LEVEL SECURITY", "brief"),
    AlterTableType.AT_ForceRowSecurity: (ACCESS_EXCLUSIVE, "FORCE ROW LEVEL SECURITY", "brief"),
    AlterTableType.AT_NoForceRowSecurity: (ACCESS_EXCLUSIVE, "NO FORCE ROW LEVEL SECURITY", "brief"),
    AlterTableType.AT_SetNotNull: (ACCESS_EXCLUSIVE, "SET NOT NULL (scan unless a validated CHECK proves it)",
                                   "scan"),
    AlterTableType.AT_DropNotNull: (ACCESS_EXCLUSIVE, "DROP NOT NULL", "brief"),
    AlterTableType.AT_DropColumn: (ACCESS_EXCLUSIVE, "DROP COLUMN (catalog only)", "brief"),
    AlterTableType.AT_DropConstraint: (ACCESS_EXCLUSIVE, "DROP CONSTRAINT", "brief"),
    AlterTableType.AT_AlterColumnType: (ACCESS_EXCLUSIVE, "ALTER COLUMN TYPE (may rewrite the table)", "scan"),
    AlterTableType.AT_ColumnDefault: (ACCESS_EXCLUSIVE, "SET/DROP DEFAULT", "brief"),
    AlterTableType.AT_SetStatistics: (SHARE_UPDATE_EXCLUSIVE, "SET STATISTICS", "brief"),
    AlterTableType.AT_SetRelOptions: (ACCESS_EXCLUSIVE, "SET (options)", "brief"),
    AlterTableType.AT_EnableTrig: (SHARE_ROW_EXCLUSIVE, "ENABLE TRIGGER", "brief"),
    AlterTableType.AT_DisableTrig: (SHARE_ROW_EXCLUSIVE, "DISABLE TRIGGER", "brief"),
}


def _alter_table(node) -> list[LockEstimate]:
    table = _name(node.relation)
    found = []
    for cmd in node.cmds or ():
        subtype = AlterTableType(cmd.subtype)
        if subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            constraint = cmd.def_
            contype = constraint.contype
            assert contype is not None  # the parser always sets a constraint's type
            not_valid = bool(constraint.skip_validation)
            if contype == ConstrType.CONSTR_FOREIGN:
                suffix = " NOT VALID (no scan)" if not_valid else " (validates: scans the table)"
                found.append(LockEstimate(table, SHARE_ROW_EXCLUSIVE, "ADD FOREIGN KEY" + suffix,
                                          "brief" if not_valid else "scan",
                                          "" if not_valid else "adding-foreign-key-constraint"))
                found.append(LockEstimate(_name(constraint.pktable), SHARE_ROW_EXCLUSIVE,
                                          "referenced by a new foreign key", "brief"))
            else:
                kind = contype.name.removeprefix("CONSTR_")
                scan = not not_valid and contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_PRIMARY,
                                                     ConstrType.CONSTR_UNIQUE)
                found.append(LockEstimate(table, ACCESS_EXCLUSIVE,
                                          f"ADD {kind} CONSTRAINT" + (" NOT VALID" if not_valid else ""),
                                          "scan" if scan else "brief",
                                          "constraint-missing-not-valid" if scan and contype == ConstrType.CONSTR_CHECK
                                          else ""))
            continue
        if subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            volatile = _volatile_default(cmd.def_)
            if volatile:
                found.append(LockEstimate(table, ACCESS_EXCLUSIVE, f"ADD COLUMN {cmd.def_.colname} DEFAULT "
                                          f"{volatile}() (volatile default: rewrites the table)", "rewrite",
                                          "adding-field-with-default"))
                continue
        if subtype == AlterTableType.AT_AlterColumnType:
            # SET NOT NULL is left out on purpose: after a validated CHECK (… IS NOT NULL) it does not scan.
            mode, why, duration = _ALTER_MODES[subtype]
            found.append(LockEstimate(table, mode, why, duration, "changing-column-type"))
            continue
        mode, why, duration = _ALTER_MODES.get(subtype, (ACCESS_EXCLUSIVE, subtype.name.removeprefix("AT_"), "brief"))
        found.append(LockEstimate(table, mode, why, duration))
    return found


def _create_table(node) -> list[LockEstimate]:
    if node.relation.relpersistence == "t":
        found = [LockEstimate(f"pg_temp.{node.relation.relname}", ACCESS_EXCLUSIVE,
                              "CREATE TEMP TABLE (exists only in this session)", "brief")]
    else:
        found = [LockEstimate(_name(node.relation), ACCESS_EXCLUSIVE, "CREATE TABLE (new, empty)", "brief")]
    for element in node.tableElts or ():
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for constraint in constraints or ():
            if isinstance(constraint, ast.Constraint) and constraint.contype == ConstrType.CONSTR_FOREIGN:
                found.append(LockEstimate(_name(constraint.pktable), SHARE_ROW_EXCLUSIVE,
                                          "referenced by a new foreign key", "brief"))
    return found


_DROP_TABLE_KINDS = {ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_INDEX,
                     ObjectType.OBJECT_MATVIEW}


def _drop(node) -> list[LockEstimate]:
    kind = ObjectType(node.removeType)
    found = []
    for obj in node.objects or ():
        parts = [p.sval for p in obj] if isinstance(obj, tuple | list) else []
        if kind in (ObjectType.OBJECT_POLICY, ObjectType.OBJECT_TRIGGER) and len(parts) >= 2:
            table = ".".join(parts[:-1]) if len(parts) > 2 else f"public.{parts[0]}"
            found.append(LockEstimate(table, ACCESS_EXCLUSIVE, f"DROP {kind.name.removeprefix('OBJECT_')}", "brief"))
        elif kind in _DROP_TABLE_KINDS and parts:
            name = ".".join(parts) if len(parts) > 1 else f"public.{parts[0]}"
            mode = SHARE_UPDATE_EXCLUSIVE if node.concurrent else ACCESS_EXCLUSIVE
            found.append(LockEstimate(name, mode, f"DROP {kind.name.removeprefix('OBJECT_')}"
                                      + (" CONCURRENTLY" if node.concurrent else ""), "brief"))
    return found


def estimate_node(node) -> tuple[list[LockEstimate], str]:
    """(locks, note) for one statement's parse node; note explains what cannot be known statically."""
    if isinstance(node, ast.AlterTableStmt):
        return _alter_table(node), ""
    if isinstance(node, ast.IndexStmt):
        if node.concurrent:
            return [LockEstimate(_name(node.relation), SHARE_UPDATE_EXCLUSIVE, "CREATE INDEX CONCURRENTLY",
                                 "build")], ""
        return [LockEstimate(_name(node.relation), SHARE, "CREATE INDEX (blocks writers for the build)", "build",
                             "require-concurrent-index-creation")], ""
    if isinstance(node, ast.CreatePolicyStmt | ast.AlterPolicyStmt):
        return [LockEstimate(_name(node.table), ACCESS_EXCLUSIVE, type(node).__name__.removesuffix("Stmt")
                             .replace("Create", "CREATE ").replace("Alter", "ALTER ").upper(), "brief")], ""
    if isinstance(node, ast.CreateTrigStmt):
        return [LockEstimate(_name(node.relation), SHARE_ROW_EXCLUSIVE, "CREATE TRIGGER", "brief")], ""
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt):
        verb = type(node).__name__.removesuffix("Stmt").upper()
        return [LockEstimate(_name(node.relation), ROW_EXCLUSIVE, verb, "scan")], ""
    if isinstance(node, ast.CreateStmt):
        return _create_table(node), ""
    if isinstance(node, ast.DropStmt):
        return _drop(node), ""
    if isinstance(node, ast.VacuumStmt):
        verb = "VACUUM" if node.is_vacuumcmd else "ANALYZE"
        rels = [_name(r.relation) for r in node.rels or ()]
        return [LockEstimate(r, SHARE_UPDATE_EXCLUSIVE, verb, "scan") for r in rels], "" if rels else "every table"
    if isinstance(node, ast.ViewStmt):
        return [LockEstimate(_name(node.view), ACCESS_EXCLUSIVE, "CREATE VIEW", "brief")], ""
    if isinstance(node, ast.RenameStmt) and node.relation is not None:
        return [LockEstimate(_name(node.relation), ACCESS_EXCLUSIVE, "RENAME", "brief")], ""
    if isinstance(node, ast.DoStmt):
        return _do_block(node)
    if isinstance(node, ast.CallStmt):
        return [], "procedure call: locks taken inside (batches commit; see the rehearsal's sampled locks)"
    return [], ""


def _do_block(node) -> tuple[list[LockEstimate], str]:
    """The locks of the literal SQL a DO block runs; what it computes at run time stays a note."""
    body = next((a.arg.sval for a in node.args or ()
                 if isinstance(a, ast.DefElem) and a.defname == "as" and isinstance(a.arg, ast.String)), "")
    found, dynamic = [], 0
    for embedded in plpgsql_sql(f"DO $__do__${body}$__do__$;"):
        if not embedded.literal:
            dynamic += 1
            continue
        try:
            parsed = parse_sql(embedded.text)
        except Exception:  # not SQL we can read: counted as run-time
            dynamic += 1
            continue
        for raw in parsed:
            locks, _ = estimate_node(raw.stmt)
            for lock in locks:
                lock.why += f" (inside DO block, line {embedded.line})"
            found += locks
    note = (f"DO block: {dynamic} statement(s) built at run time (see the rehearsal's sampled locks)"
            if dynamic else "")
    return found, note


def estimate_statement(text: str) -> tuple[list[LockEstimate], str]:
    try:
        raw = parse_sql(text)
    except Exception:  # already parsed once by sqlscript; a failure here only loses the estimate
        return [], "not parsed"
    locks, notes = [], []
    for stmt in raw:
        found, note = estimate_node(stmt.stmt)
        locks += found
        if note:
            notes.append(note)
    return locks, "; ".join(notes)


def estimate_script(script) -> list[dict]:
    """One entry per statement that takes a table lock (or whose locks are only known at run time)."""
    entries = []
    for statement in script.statements:
        locks, note = estimate_statement(statement.text)
        if not locks and not note:
            continue
        first = statement.text.strip().splitlines()[0][:160] if statement.text.strip() else ""
        entries.append({
            "file": script.name,
            "statement_index": statement.index,
            "line": statement.line,
            "kind": statement.kind,
            "summary": first,
            "locks": [asdict(lock) | {"blocks": BLOCKS[lock.mode]} for lock in locks],
            "note": note,
        })
    return entries


def strongest_per_table(entries: list[dict]) -> dict[str, str]:
    modes: dict[str, list[str]] = {}
    for entry in entries:
        for lock in entry["locks"]:
            modes.setdefault(lock["table"], []).append(lock["mode"])
    return {table: _strongest(found) for table, found in modes.items()}
