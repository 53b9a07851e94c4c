"""squawk's lint of the bundle, each finding placed on its file and statement."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.targets.sqlscript import Script, ScriptError, load_script


def statement_digest(text: str) -> str:
    """What a lead's sign-off of a finding is bound to: the statement's text (any edit needs a new sign-off)."""
    return hashlib.sha256(text.strip().encode()).hexdigest()


def squawk_binary() -> str | None:
    """squawk on PATH, else next to the running Python (the virtualenv's bin/)."""
    found = shutil.which("squawk")
    if found:
        return found
    beside = Path(sys.executable).parent / "squawk"
    return str(beside) if beside.is_file() else None


def _statement_at(script, line: int):
    """The statement whose text covers a 1-based line of the file."""
    current = None
    for statement in script.statements:
        if statement.line <= line:
            current = statement
        else:
            break
    return current


def lint_bundle(directory: Path, files: list[str] | None = None, timeout: int = 60) -> dict:
    """{"ran": bool, "error": str|None, "files": [{"file", "findings": [...]}], "count": n}."""
    binary = squawk_binary()
    files = files or RUNBOOK.bundle_files()
    if binary is None:
        return {"ran": False, "error": "squawk is not installed (pip install squawk-cli)", "files": [], "count": 0}
    paths = [directory / name for name in files if (directory / name).is_file()]
    try:
        proc = subprocess.run([binary, "--reporter", "json", *map(str, paths)], capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ran": False, "error": f"squawk could not run: {exc}", "files": [], "count": 0}
    try:
        raw = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return {"ran": False, "error": (proc.stderr or proc.stdout).strip()[:500], "files": [], "count": 0}
    by_file: dict[str, list] = {path.name: [] for path in paths}
    scripts: dict[str, Script | None] = {}
    for path in paths:
        try:
            scripts[path.name] = load_script(path)
        except ScriptError:
            scripts[path.name] = None
    for finding in raw:
        name = Path(finding.get("file", "")).name
        line = int(finding.get("line", 0)) + 1  # squawk's lines are 0-based
        script = scripts.get(name)
        statement = _statement_at(script, line) if script else None
        by_file.setdefault(name, []).append({
            "rule": finding.get("rule_name"),
            "level": finding.get("level"),
            "message": finding.get("message"),
            "help": finding.get("help"),
            "line": line,
            "statement_index": statement.index if statement else None,
            "statement_digest": statement_digest(statement.text) if statement else None,
            "statement": (statement.text.strip().splitlines()[0][:160] if statement and statement.text.strip()
                          else ""),
        })
    result_files = [{"file": name, "findings": findings} for name, findings in by_file.items()]
    return {"ran": True, "error": None, "files": result_files, "count": sum(len(f["findings"]) for f in result_files)}
