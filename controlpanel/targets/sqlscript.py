"""SQL files as statements: split by PostgreSQL's own parser (pglast), with what each needs to run.

Pure: no connection. A file that does not parse is refused whole, before anything runs.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pglast
from pglast import ast, parse_sql
from pglast.enums import TransactionStmtKind
from pglast.parser import ParseError


class ScriptError(Exception):
    """A bundle file cannot be run; `detail` names file, statement and position."""

    def __init__(self, message: str, **detail):
        super().__init__(message)
        self.detail = {"message": message, **detail}


@dataclass(frozen=True)
class Statement:
    index: int  # 1-based position in the file
    text: str
    line: int  # 1-based line where it starts
    kind: str  # parser node name, e.g. CreateStmt
    transaction_control: str | None  # "begin" / "commit" / "rollback" / None
    needs_autocommit: bool  # PostgreSQL refuses it inside a transaction block


@dataclass(frozen=True)
class Script:
    name: str
    statements: tuple[Statement, ...]

    @property
    def transactional(self) -> bool:
        """Run the whole file in one transaction unless it manages transactions itself or cannot."""
        return not any(s.transaction_control or s.needs_autocommit for s in self.statements)


_TX_KINDS = {
    TransactionStmtKind.TRANS_STMT_BEGIN: "begin",
    TransactionStmtKind.TRANS_STMT_START: "begin",
    TransactionStmtKind.TRANS_STMT_COMMIT: "commit",
    TransactionStmtKind.TRANS_STMT_ROLLBACK: "rollback",
}


def _transaction_control(node) -> str | None:
    if not isinstance(node, ast.TransactionStmt):
        return None
    # Savepoints and two-phase commands still mean "this file manages its own transactions".
    if node.kind is None:
        return "other"
    return _TX_KINDS.get(TransactionStmtKind(node.kind), "other")


def _needs_autocommit(node) -> bool:
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return True
    if isinstance(node, ast.ReindexStmt):
        return any(getattr(p, "defname", "") == "concurrently" for p in (node.params or ()))
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return True
    # CALL may run a procedure that COMMITs between batches; VACUUM and database DDL refuse a block.
    return isinstance(node, ast.CallStmt | ast.VacuumStmt | ast.CreatedbStmt | ast.DropdbStmt | ast.AlterSystemStmt)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def parse_script(text: str, name: str = "<sql>") -> Script:
    try:
        slices = list(pglast.split(text, with_parser=True, only_slices=True))
        nodes = parse_sql(text)
    except ParseError as exc:
        message, location = (exc.args + (None,))[:2]
        statement_index, statement_text, position = _locate(text, location)
        raise ScriptError(
            f"{name}: {message}",
            file=name,
            statement_index=statement_index,
            statement=statement_text,
            position=position,
            line=line_of(text, location) if location is not None else None,
        ) from None
    statements = []
    for index, (piece, raw) in enumerate(zip(slices, nodes, strict=True), start=1):
        statements.append(
            Statement(
                index=index,
                text=text[piece],
                line=line_of(text, piece.start),
                kind=type(raw.stmt).__name__,
                transaction_control=_transaction_control(raw.stmt),
                needs_autocommit=_needs_autocommit(raw.stmt),
            )
        )
    return Script(name, tuple(statements))


def _locate(text: str, location: int | None) -> tuple[int | None, str, int | None]:
    """For a parse error: which statement (by semicolon-free splitting with the scanner) and where in it."""
    if location is None:
        return None, "", None
    try:
        pieces = list(pglast.split(text, with_parser=False, only_slices=True))
    except Exception:
        pieces = []
    for index, piece in enumerate(pieces, start=1):
        if piece.start <= location <= piece.stop:
            return index, text[piece], location - piece.start + 1
    return None, text[max(0, location - 80): location + 80], None


def load_script(path: Path) -> Script:
    return parse_script(path.read_text(), name=path.name)


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
