"""Which lock each statement of a bundle file takes, and on which table: read from the pglast parse tree.

Pure (no connection): `estimate_script` gives one entry per statement; the preflight adds each table's
row estimate and size from the target's catalog. Statements whose locks are decided at run time (DO
blocks, procedures) say so: the rehearsal samples what they really take.
"""

from dataclasses import asdict, dataclass

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, ObjectType

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
    table: str  # schema.name
    mode: str
    why: str
    duration: str  # "brief" (catalog only) / "scan" (reads the table) / "batches" / "build"


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
            contype = ConstrType(constraint.contype)
            not_valid = bool(constraint.skip_validation)
            if contype == ConstrType.CONSTR_FOREIGN:
                suffix = " NOT VALID (no scan)" if not_valid else " (validates: scans the table)"
                found.append(LockEstimate(table, SHARE_ROW_EXCLUSIVE, "ADD FOREIGN KEY" + suffix,
                                          "brief" if not_valid else "scan"))
                found.append(LockEstimate(_name(constraint.pktable), SHARE_ROW_EXCLUSIVE,
                                          "referenced by a new foreign key", "brief"))
            else:
                kind = contype.name.removeprefix("CONSTR_")
                scan = not not_valid and contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_PRIMARY,
                                                     ConstrType.CONSTR_UNIQUE)
                found.append(LockEstimate(table, ACCESS_EXCLUSIVE,
                                          f"ADD {kind} CONSTRAINT" + (" NOT VALID" if not_valid else ""),
                                          "scan" if scan else "brief"))
            continue
        mode, why, duration = _ALTER_MODES.get(subtype, (ACCESS_EXCLUSIVE, subtype.name.removeprefix("AT_"), "brief"))
        found.append(LockEstimate(table, mode, why, duration))
    return found


def _create_table(node) -> list[LockEstimate]:
    found = [LockEstimate(_name(node.relation), ACCESS_EXCLUSIVE, "CREATE TABLE (new, empty)", "brief")]
    for element in node.tableElts or ():
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for constraint in constraints or ():
            if isinstance(constraint, ast.Constraint) and ConstrType(constraint.contype) == ConstrType.CONSTR_FOREIGN:
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
        return [LockEstimate(_name(node.relation), SHARE, "CREATE INDEX (blocks writers for the build)", "build")], ""
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
        return [], "DO block: its locks depend on what it executes (see the rehearsal's sampled locks)"
    if isinstance(node, ast.CallStmt):
        return [], "procedure call: locks taken inside (batches commit; see the rehearsal's sampled locks)"
    return [], ""


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


def tables_of(entries: list[dict]) -> set[str]:
    return {lock["table"] for entry in entries for lock in entry["locks"]}


def strongest_per_table(entries: list[dict]) -> dict[str, str]:
    modes: dict[str, list[str]] = {}
    for entry in entries:
        for lock in entry["locks"]:
            modes.setdefault(lock["table"], []).append(lock["mode"])
    return {table: _strongest(found) for table, found in modes.items()}
