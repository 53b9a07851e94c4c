"""What a SQL step will run, read before pressing Start: the file, squawk's findings and the lock estimate.

Both come from the safety area (lint.py, locks.py); kept in the cache by the pinned checksum, so the page
lints a file once, not once per view.
"""

from dataclasses import dataclass
from pathlib import Path

from django.core.cache import cache

from controlpanel.safety.lint import lint_bundle
from controlpanel.safety.locks import BLOCKS, STRENGTH, estimate_script, strongest_per_table
from controlpanel.targets.sqlscript import ScriptError, load_script


@dataclass(frozen=True)
class SqlPreview:
    file: str
    text: str
    statements: int
    lint: dict  # lint_bundle's answer for this file: {"ran", "error", "findings"}
    locks: list[dict]  # estimate_script's entries
    strongest: list[tuple[str, str, list[str]]]  # (mode, what it blocks, tables), the strongest mode per table

    @property
    def decided_at_run_time(self) -> list[dict]:
        return [entry for entry in self.locks if entry["note"] and not entry["locks"]]


def preview(run, file_name: str) -> SqlPreview | None:
    digest = run.checksums.get(file_name)
    path = Path(run.bundle_dir) / file_name
    if not digest or not path.is_file():
        return None
    key = f"sql-preview:{digest}"
    found = cache.get(key)
    if found is None:
        found = _build(path)
        cache.set(key, found, timeout=24 * 3600)
    return found


def _build(path: Path) -> SqlPreview:
    text = path.read_text()
    try:
        script = load_script(path)
    except ScriptError as exc:
        return SqlPreview(path.name, text, 0, {"ran": False, "error": str(exc), "findings": []}, [], [])
    linted = lint_bundle(path.parent, [path.name])
    findings: list[dict] = next((f["findings"] for f in linted["files"] if f["file"] == path.name), [])
    entries = estimate_script(script)
    by_mode: dict[str, list[str]] = {}
    for table, mode in sorted(strongest_per_table(entries).items()):
        by_mode.setdefault(mode, []).append(table)
    strongest = [(mode, BLOCKS[mode], tables) for mode, tables in
                 sorted(by_mode.items(), key=lambda item: -STRENGTH.index(item[0]))]
    return SqlPreview(path.name, text, len(script.statements),
                      {"ran": linted["ran"], "error": linted["error"], "findings": findings}, entries, strongest)
