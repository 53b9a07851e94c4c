"""Small helpers over pglast parse trees, shared by the lints, the lock estimate and the preflight. Pure.

`walk` yields every node with whether it sits inside a sub-select; `parse_expression` parses a policy
expression as pg_policies prints it; `plpgsql_sql` lists the SQL a plpgsql body (a function or a DO block)
runs: plain statements, and EXECUTE of a string literal (EXECUTE of a computed string is reported as such).
"""

import json
from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.parser import ParseError, parse_plpgsql_json


def walk(node, in_sublink=False):
    """Yields (node, inside_a_sublink) for every AST node under `node`."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from walk(item, in_sublink)
        return
    if not isinstance(node, ast.Node):
        return
    yield node, in_sublink
    inside = in_sublink or isinstance(node, ast.SubLink)
    for attr in node.__slots__:
        yield from walk(getattr(node, attr, None), inside)


def parse_expression(text: str):
    stmt = parse_sql(f"SELECT 1 WHERE {text}")[0].stmt
    assert isinstance(stmt, ast.SelectStmt)  # what we parse is a SELECT
    return stmt.whereClause


def names(parts) -> list[str]:
    return [p.sval for p in parts or () if isinstance(p, ast.String) and p.sval is not None]


def relation_name(rv, default_schema: str = "public") -> str:
    return f"{rv.schemaname or default_schema}.{rv.relname}"


def relations_read(node) -> set[str]:
    """schema.name of every table a statement or expression reads (RangeVar nodes), public when unqualified."""
    return {relation_name(n) for n, _ in walk(node) if isinstance(n, ast.RangeVar)}


@dataclass(frozen=True)
class EmbeddedSQL:
    text: str
    line: int  # 1-based line within the body
    dynamic: bool  # EXECUTE
    literal: bool  # the SQL is known statically (plain statement, or EXECUTE of a string literal)


def _literal(query: str) -> str | None:
    """The value of a plpgsql expression that is exactly one SQL string literal, else None."""
    try:
        stmt = parse_sql(f"SELECT {query}")[0].stmt
    except ParseError:
        return None
    if not isinstance(stmt, ast.SelectStmt):
        return None
    targets = list(stmt.targetList or [])
    if len(targets) == 1 and isinstance(targets[0].val, ast.A_Const) and isinstance(targets[0].val.val, ast.String):
        return targets[0].val.val.sval
    return None


def _collect(node, out: list, line: int = 0):
    if isinstance(node, list):
        for item in node:
            _collect(item, out, line)
        return
    if not isinstance(node, dict):
        return
    line = node.get("lineno", line)
    for key, value in node.items():
        if key == "PLpgSQL_stmt_dynexecute":
            query = value["query"]["PLpgSQL_expr"]["query"]
            literal = _literal(query)
            out.append(EmbeddedSQL(literal if literal is not None else query, value.get("lineno", line), True,
                                   literal is not None))
            continue  # its USING expressions are values, not statements
        if key == "PLpgSQL_expr" and isinstance(value, dict) and value.get("parseMode", 0) == 0:
            # parse mode 0 is a whole statement (SELECT INTO, UPDATE, PERFORM, RETURN QUERY, FOR … IN query)
            out.append(EmbeddedSQL(value["query"], line, False, True))
            continue
        if isinstance(value, dict | list):
            _collect(value, out, line)


def plpgsql_sql(source: str) -> list[EmbeddedSQL]:
    """The SQL a plpgsql function definition or DO statement runs (see module docstring); [] if unparsable."""
    try:
        tree = json.loads(parse_plpgsql_json(source))
    except (ParseError, ValueError, TypeError):
        return []
    out: list[EmbeddedSQL] = []
    _collect(tree, out)
    return out


def function_body_sql(language: str, source: str) -> list[str]:
    """Statically known SQL of a function body (prosrc): SQL functions whole, plpgsql via its statements."""
    if language == "sql":
        return [source]
    if language == "plpgsql":
        # The parser checks RETURN against the declared result: try the shapes a body can have.
        for returns in ("void", "int", "SETOF record"):
            wrapped = f"CREATE FUNCTION x() RETURNS {returns} LANGUAGE plpgsql AS $__body__${source}$__body__$;"
            found = plpgsql_sql(wrapped)
            if found:
                return [e.text for e in found if e.literal]
    return []
