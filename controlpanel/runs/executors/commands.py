"""External programs: the panel's own backup (pg_dump) and configured deploy commands."""

import hashlib
import os
import subprocess
import threading
import time

from django.conf import settings
from django.utils import timezone

from controlpanel.targets.connection import redact, secret_values
from controlpanel.targets.pgenv import ClientProgramError, check_client_version, client_env, client_program

from ..runner import StepFailed

# The only variables a configured command inherits from the worker, besides those it names.
BASE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def command_env(names) -> dict:
    return {name: os.environ[name] for name in (*BASE_VARIABLES, *names) if name in os.environ}


def _stream(process, ctx, timeout: float, secrets=()) -> int:
    """Copy the program's output to the live log line by line (secrets redacted); stop it on cancel or timeout."""
    def pump():
        for line in process.stdout:
            ctx.sink.emit("output", redact(line.rstrip("\n"), secrets))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if ctx.is_cancelled() or time.monotonic() > deadline:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            reader.join(5)
            if ctx.is_cancelled():
                from controlpanel.targets.sqlrun import ScriptCancelled

                raise ScriptCancelled("the command was stopped")
            raise StepFailed(f"The command did not finish within {timeout:.0f}s and was stopped.")
        time.sleep(0.2)
    reader.join(5)
    return process.returncode


def run_backup(ctx) -> dict:
    settings.BACKUP_DIR.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    path = settings.BACKUP_DIR / f"{ctx.target.name}-run{ctx.run.pk}-{stamp}.dump"
    started = time.monotonic()
    program = client_program("pg_dump")
    try:
        check_client_version(program, ctx.conn.info.server_version)
    except ClientProgramError as exc:
        raise StepFailed(str(exc)) from None
    process = subprocess.Popen(
        [program, "--format=custom", "--no-password", f"--file={path}"],
        env=client_env(ctx.target), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    code = _stream(process, ctx, timeout=settings.STEP_MAX_SECONDS, secrets=secret_values(ctx.target))
    if code != 0:
        raise StepFailed(f"pg_dump exited with status {code}; see the log above.")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    size = path.stat().st_size
    ctx.sink.emit("info", f"Backup written: {path.name}, {size / 1e6:.1f} MB, sha256 {digest.hexdigest()[:16]}…")
    return {"file": path.name, "bytes": size, "sha256": digest.hexdigest(),
            "seconds": round(time.monotonic() - started, 1)}


def run_command(ctx) -> dict:
    from ..engine import command_for

    command = command_for(ctx.run, ctx.step)
    if command is None:
        raise StepFailed("No command is configured for this step; sign it off manually.")
    ctx.sink.emit("info", f"$ {' '.join(command.arguments)}  (in {command.working_directory})")
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [str(a) for a in command.arguments], cwd=command.working_directory,
            env=command_env(command.passed_variables), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
    except OSError as exc:
        raise StepFailed(f"Could not start the command: {exc}") from None
    secrets = secret_values(ctx.target, command.passed_variables)
    code = _stream(process, ctx, timeout=command.timeout_seconds, secrets=secrets)
    if code != 0:
        raise StepFailed(f"The command exited with status {code}.", exit_code=code)
    return {"command": command.arguments, "exit_code": code, "seconds": round(time.monotonic() - started, 1)}
