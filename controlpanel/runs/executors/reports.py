"""Read-only query reports (data assessment, post-migration validation)."""

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID


def jsonable(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID | datetime | date):
        return str(value)
    return value


def run_query_report(ctx) -> dict:
    results = []
    with ctx.conn.transaction():
        ctx.conn.execute("SET TRANSACTION READ ONLY")
        for label, sql in ctx.step.queries:
            ctx.sink.emit("statement", f"{label}: {sql}")
            cur = ctx.conn.execute(sql)
            columns = [c.name for c in cur.description]
            rows = [[jsonable(v) for v in row] for row in cur.fetchall()]
            results.append({"label": label, "sql": sql, "columns": columns, "rows": rows})
            shown = rows[0] if len(rows) == 1 else f"{len(rows)} rows"
            ctx.sink.emit("output", f"    {label}: {shown}")
    return {"queries": results}
