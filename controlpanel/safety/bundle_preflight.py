"""Preflight lines about the bundle itself, judged against the target's catalog (called from run_preflight).

- bundle.references: every relation and function a forward file uses exists on the target or is created
  earlier in the bundle; otherwise NO-GO naming file, line and object.
- bundle.rerunnable: CREATE POLICY / CREATE TRIGGER without DROP … IF EXISTS before it or OR REPLACE: the
  file fails when re-run after a partial or complete run (NO-GO).
- bundle.temp_tables: a TEMP progress table dies with the session (NO-GO); other TEMP tables are reported.
- bundle.migrated: the target already has what the bundle creates: said, not NO-GO.
- locks.blocking: squawk's named rules and the lock estimate's patterns (non-concurrent index, FK or CHECK
  validated at once, volatile default, column type change) on a populated table are NO-GO unless a lead
  signed off that rule on that statement (LintSignOff: rule × file × statement digest).
"""

from pathlib import Path

from django.conf import settings

from controlpanel.targets.catalog import capped_count
from controlpanel.targets.sqlscript import load_script

from .bundle_reader import Analysis, analyse
from .lint import statement_digest
from .models import LintSignOff

GO, NO_GO, WARN = "go", "no-go", "warn"
BLOCKING_RULES = ("require-concurrent-index-creation", "adding-field-with-default", "adding-foreign-key-constraint",
                  "constraint-missing-not-valid", "changing-column-type", "adding-not-nullable-field",
                  "disallowed-unique-constraint", "adding-serial-primary-key-field", "ban-drop-column",
                  "ban-drop-table")


def small_table_rows() -> int:
    """Below this many rows a blocking build or rewrite lasts milliseconds: reported, not NO-GO."""
    return int(getattr(settings, "SAFETY_SMALL_TABLE_ROWS", 10_000))


def _resolves(conn, ref) -> bool:
    if ref.kind == "relation":
        name = f'"{ref.schema}"."{ref.name}"' if ref.schema else f'"{ref.name}"'
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = %s AND p.proname = %s)", (ref.schema, ref.name)).fetchone()[0]


def references_check(conn, analysis: Analysis, check) -> dict:
    unresolved, seen = [], set()
    for ref in analysis.references:
        if (ref.kind, ref.display) in seen:
            continue
        seen.add((ref.kind, ref.display))
        if not _resolves(conn, ref):
            unresolved.append(ref)
    if not unresolved:
        return check("bundle.references", "Every relation and function the bundle uses resolves", GO,
                     f"{len(seen)} distinct objects referenced; each exists on the target or is created earlier "
                     "in the bundle")
    return check("bundle.references", "Every relation and function the bundle uses resolves", NO_GO,
                 "; ".join(f"{r.file} line {r.line}: {r.kind} {r.display} does not exist on the target and is not "
                           "created earlier in the bundle" for r in unresolved),
                 unresolved=[{"file": r.file, "line": r.line, "kind": r.kind, "object": r.display}
                             for r in unresolved])


def rerunnable_check(analysis: Analysis, check) -> dict:
    if not analysis.unguarded:
        return check("bundle.rerunnable", "CREATE POLICY / TRIGGER are re-runnable", GO,
                     "each is preceded by DROP … IF EXISTS or uses OR REPLACE")
    return check("bundle.rerunnable", "CREATE POLICY / TRIGGER are re-runnable", NO_GO,
                 "; ".join(f"{u.file} line {u.line}: {u.what} has no DROP … IF EXISTS before it (re-running the file "
                           "fails with 'already exists')" for u in analysis.unguarded),
                 unguarded=[u.__dict__ for u in analysis.unguarded])


def temp_tables_check(analysis: Analysis, check) -> dict:
    if not analysis.temp_tables:
        return check("bundle.temp_tables", "No TEMP tables hold migration state", GO, "no CREATE TEMP TABLE")
    progress = [t for t in analysis.temp_tables if "progress" in t.what]
    text = "; ".join(f"{t.file} line {t.line}: {t.what}" for t in analysis.temp_tables)
    if progress:
        return check("bundle.temp_tables", "No TEMP tables hold migration state", NO_GO,
                     f"{text} — a TEMP progress table vanishes with the session: psql users and the panel cannot "
                     "read it and an interrupted run cannot resume")
    return check("bundle.temp_tables", "No TEMP tables hold migration state", WARN,
                 f"{text} (exists only in the session that created it)")


def migrated_check(conn, analysis: Analysis, check) -> dict:
    """Judged by the catalog: how many of the relations, columns and policies the bundle creates exist."""
    relations = [(s, n) for s, n in analysis.created_relations if s is not None]
    present = sum(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{s}"."{n}"',)).fetchone()[0]
                  for s, n in relations)
    present += sum(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                                "AND attname = %s AND NOT attisdropped)", (t, c)).fetchone()[0]
                   for t, c in analysis.created_columns)
    present += sum(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname || '.' || tablename = %s "
                                "AND policyname = %s)", (t, p)).fetchone()[0]
                   for t, p in analysis.created_policies)
    total = len(relations) + len(analysis.created_columns) + len(analysis.created_policies)
    if total and present == total:
        return check("bundle.migrated", "Migration state of the target", WARN,
                     f"already migrated: all {total} relations, columns and policies the forward files create exist; "
                     "the forward files will be no-ops", present=present, total=total)
    if present:
        return check("bundle.migrated", "Migration state of the target", WARN,
                     f"partly migrated: {present} of {total} objects the forward files create already exist "
                     "(an interrupted run? the files resume)", present=present, total=total)
    return check("bundle.migrated", "Migration state of the target", GO,
                 f"not migrated: none of the {total} objects the forward files create exist", present=0, total=total)


def _candidates(entries: list[dict], lint: dict | None, statements: dict) -> dict[tuple, dict]:
    """(rule, file, statement_index) -> {table, why, line, digest}: the estimate's patterns and squawk's rules."""
    found: dict[tuple, dict] = {}
    for entry in entries:
        for lock in entry["locks"]:
            if lock.get("rule"):
                found.setdefault((lock["rule"], entry["file"], entry["statement_index"]), {
                    "table": lock["table"], "why": lock["why"], "line": entry["line"],
                    "digest": statements.get((entry["file"], entry["statement_index"]))})
    for file in (lint or {}).get("files", []):
        for finding in file["findings"]:
            if finding["rule"] in BLOCKING_RULES:
                found.setdefault((finding["rule"], file["file"], finding["statement_index"]), {
                    "table": None, "why": f"squawk: {finding['message']}", "line": finding["line"],
                    "digest": finding.get("statement_digest")})
    return found


def blocking_locks_check(conn, entries: list[dict], lint: dict | None, statements: dict, check) -> dict:
    small = small_table_rows()
    blocking, small_ones, signed = [], [], []
    for (rule, file, index), c in sorted(_candidates(entries, lint, statements).items(),
                                         key=lambda item: (item[0][1], item[1]["line"] or 0)):
        rows = capped_count(conn, c["table"], small) if c["table"] and not c["table"].startswith("pg_temp.") else None
        where = f"{file} line {c['line']}: {rule} on {c['table'] or 'the statement'} ({c['why']})"
        if c["table"] and rows is None:
            continue  # created by the bundle (new, empty) or a TEMP table: no writer waits
        if rows is not None and rows <= small:
            small_ones.append(f"{where}: {rows} rows, ≤ {small}")
            continue
        signoff = LintSignOff.objects.filter(rule=rule, file=file, statement_digest=c["digest"]).first()
        if signoff:
            signed.append(f"{where}: signed off by {signoff.signed_by} ({signoff.reason})")
        else:
            blocking.append({"rule": rule, "file": file, "line": c["line"], "statement_index": index,
                             "table": c["table"], "why": c["why"], "statement_digest": c["digest"], "text": where})
    detail = {"blocking": blocking, "signed_off": signed, "small_tables": small_ones}
    if blocking:
        return check("locks.blocking", "No statement blocks writers on a populated table", NO_GO,
                     "; ".join(b["text"] + (f": more than {small} rows" if b["table"] else "") for b in blocking)
                     + ". A lead may sign off one rule on one statement (LintSignOff) if it is safe here.", **detail)
    text = "no blocking pattern on a populated table"
    if signed or small_ones:
        text += "; " + "; ".join(signed + small_ones)
    return check("locks.blocking", "No statement blocks writers on a populated table", WARN if signed else GO, text,
                 **detail)


def bundle_checks(conn, directory: Path, files: list[str], entries: list[dict], lint: dict | None, check) -> list:
    scripts = [load_script(directory / name) for name in files]
    statements = {(s.name, st.index): statement_digest(st.text) for s in scripts for st in s.statements}
    analysis = analyse(scripts)
    return [references_check(conn, analysis, check), rerunnable_check(analysis, check),
            temp_tables_check(analysis, check), migrated_check(conn, analysis, check),
            blocking_locks_check(conn, entries, lint, statements, check)]
