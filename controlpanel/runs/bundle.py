"""The SQL bundle on disk: checksums pinned by runs, files loaded only when they still match."""

import hashlib
from pathlib import Path

from django.conf import settings

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.targets.sqlscript import Script, file_checksum, parse_script


class BundleChanged(Exception):
    """A bundle file differs from what the run pinned; the message is shown as is."""


def bundle_dir(path: str | Path | None = None) -> Path:
    return Path(path) if path else Path(settings.MIGRATION_BUNDLE_DIR)


def checksums(directory: Path) -> dict[str, str]:
    missing = [name for name in RUNBOOK.bundle_files() if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"bundle {directory} lacks: {', '.join(missing)}")
    return {name: file_checksum(directory / name) for name in RUNBOOK.bundle_files()}


def changed_files(run) -> list[str]:
    directory = Path(run.bundle_dir)
    changed = []
    for name, pinned in run.checksums.items():
        path = directory / name
        if not path.is_file() or file_checksum(path) != pinned:
            changed.append(name)
    return changed


def verified_script(run, name: str) -> Script:
    """Load a bundle file for execution, refusing it if it no longer matches the run's checksum.

    The file is read once: the bytes that were hashed are the bytes parsed, so a file swapped between
    the check and the parse can never run unreviewed statements."""
    path = Path(run.bundle_dir) / name
    data = path.read_bytes() if path.is_file() else None
    if data is None or hashlib.sha256(data).hexdigest() != run.checksums.get(name):
        raise BundleChanged(
            f"{name} changed since run {run.pk} was created (checksum differs from the pinned one). "
            "Refusing to run it: create a new run to use the new file, after reviewing the change."
        )
    return parse_script(data.decode(), name=path.name)
