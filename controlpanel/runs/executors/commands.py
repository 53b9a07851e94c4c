"""External programs: the panel's own backup (pg_dump) and configured deploy commands."""

import hashlib
import os
import subprocess
import threading
import time

from django.conf import settings
from django.utils import timezone

from controlpanel.targets.connection import secret_values
from controlpanel.targets.pgenv import ClientProgramError, check_client_version, client_env, client_program
from controlpanel.targets.secrets import LineRedactor

from ..models import StepCommand
from .base import StepCancelled, StepFailed

# The only variables a configured command inherits from the worker, besides those it names.
BASE_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def command_env(names) -> dict:
    return {name: os.environ[name] for name in (*BASE_VARIABLES, *names) if name in os.environ}


QUIET_FLUSH_SECONDS = 1.0  # a program silent this long has finished printing what it held back


def _stream(process, ctx, timeout: float, secrets=()) -> int:
    """Copy the program's output to the live log line by line (secrets redacted, also when split across
    lines: a few lines are held back until the next ones or a pause); stop it on cancel or timeout."""
    redactor = LineRedactor(secrets)
    lock = threading.Lock()
    last_line = [time.monotonic()]

    def emit(lines):
        for line in lines:
            ctx.sink.emit("output", line)

    def pump():
        for line in process.stdout:
            with lock:
                last_line[0] = time.monotonic()
                emit(redactor.feed(line.rstrip("\n")))
        with lock:
            emit(redactor.flush())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        with lock:
            if time.monotonic() - last_line[0] > QUIET_FLUSH_SECONDS:
                emit(redactor.flush())
        if ctx.is_cancelled() or time.monotonic() > deadline:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            reader.join(5)
            if ctx.is_cancelled():
                raise StepCancelled("the command was stopped")
            raise StepFailed(f"The command did not finish within {timeout:.0f}s and was stopped.")
        time.sleep(0.2)
    reader.join(5)
    with lock:
        emit(redactor.flush())
    return process.returncode


def run_backup(ctx) -> dict:
    settings.BACKUP_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    path = settings.BACKUP_DIR / f"{ctx.target.name}-run{ctx.run.pk}-{stamp}.dump"
    # A dump holds every row of the target: create it readable by the panel's user only, before pg_dump
    # writes into it (pg_dump keeps the mode of a file that exists).
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
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
    command = StepCommand.objects.command_for(ctx.run, ctx.step)
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
