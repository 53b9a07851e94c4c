"""What must never be shown, and the one function that removes it from text.

The secrets are the values of environment variables the panel knows to be secret (each target's DSN and
service key, the panel's own database password and secret key, a command's passed variables). `redact`
removes each of them in the forms a program or a person is likely to produce: as is, its password part,
URL-encoded or decoded, base64 (any alignment, standard or URL-safe), hex, reversed, and split across
lines or spaces.
"""

import base64
import binascii
import os
import re
import time
from functools import lru_cache
from urllib.parse import quote, quote_plus, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4  # never "redact" trivially short values: they would mangle the whole text
MIN_FRAGMENT_LENGTH = 6  # a base64 fragment shorter than this would match ordinary words
# The panel's own secrets, redacted wherever the process knows them.
PANEL_SECRET_VARIABLES = ("CONTROL_DB_PASSWORD", "SECRET_KEY")
# Between two characters of a secret: a line break (with the indentation or prefix a wrapping tool adds).
_SPLIT = r"(?:[ \t]*\r?\n[ \t]*|[ \t]+)?"


_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@]*:([^@]+)@", re.IGNORECASE)


def _password(value: str) -> str | None:
    try:
        password = conninfo_to_dict(value).get("password")
    except psycopg.ProgrammingError:  # not a DSN, or a malformed one: find the URL's password by its shape
        match = _URL_PASSWORD.match(value)
        return match.group(1) if match else None
    return str(password) if password else None


def secret_values(target=None, variable_names=()) -> list[str]:
    """The target's DSN and its password, its service key, the panel's own secrets and the values of the
    named environment variables. Longest first, so a DSN is replaced before the password inside it."""
    names = [*PANEL_SECRET_VARIABLES, *variable_names]
    if target is not None:
        names += [target.dsn_env_var, target.service_key_env_var]
    secrets = set()
    for name in names:
        value = os.environ.get(name or "", "")
        if not value:
            continue
        secrets.add(value)
        password = _password(value)
        if password:
            secrets.add(password)
    return sorted((v for v in secrets if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


_all_cache: tuple[float, list[str]] = (0.0, [])


def all_secret_values(max_age: float = 5.0) -> list[str]:
    """Secrets of every registered target (for free text, which may mention any of them); cached briefly."""
    global _all_cache
    at, values = _all_cache
    if time.monotonic() - at < max_age:
        return values
    from .models import Target

    names: set[str] = set()
    for dsn_var, key_var in Target.objects.values_list("dsn_env_var", "service_key_env_var"):
        names.update(n for n in (dsn_var, key_var) if n)
    values = secret_values(variable_names=sorted(names))
    _all_cache = (time.monotonic(), values)
    return values


def forget() -> None:
    """Drop the cached secrets (a target was added or changed)."""
    global _all_cache
    _all_cache = (0.0, [])


def _base64_fragments(secret: bytes) -> set[str]:
    """The base64 characters that depend only on the secret, for each of the three alignments it can have
    inside a longer encoded text."""
    fragments = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret).decode().rstrip("=")
        start = -(-8 * offset // 6)  # first character made of the secret's bits only
        end = 8 * (offset + len(secret)) // 6
        fragment = encoded[start:end]
        if len(fragment) >= MIN_FRAGMENT_LENGTH:
            fragments.add(fragment)
            fragments.add(fragment.translate(str.maketrans("+/", "-_")))  # URL-safe alphabet
    return fragments


def variants(secret: str) -> set[str]:
    """The forms in which `secret` may appear in text."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret), unquote(secret),
             secret[::-1], binascii.hexlify(raw).decode(), binascii.hexlify(raw).decode().upper()}
    forms |= _base64_fragments(raw)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


@lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern | None:
    forms = set()
    for secret in secrets:
        forms |= variants(secret)
    if not forms:
        return None
    # Longest first: a DSN is replaced as a whole before the password inside it.
    alternatives = [_SPLIT.join(re.escape(ch) for ch in form) for form in sorted(forms, key=len, reverse=True)]
    return re.compile("|".join(alternatives))


def redact(text, secrets=None):
    """`text` with every form of every secret replaced by [redacted]; `secrets` defaults to all known ones.
    Non-strings (numbers, None) are returned as they are."""
    if not isinstance(text, str) or not text:
        return text
    if secrets is None:
        secrets = all_secret_values()
    pattern = _pattern(tuple(sorted(set(secrets))))
    return pattern.sub(REDACTED, text) if pattern else text


def redact_data(value, secrets=None):
    """redact() applied to every string inside a JSON-like value (dicts, lists)."""
    if secrets is None:
        secrets = all_secret_values()
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v, secrets) for v in value]
    return value


class LineRedactor:
    """Redacts a stream of output lines, holding back the last few so that a secret split across lines is
    caught as a whole; `flush()` releases what is held (at the end, or when the program went quiet)."""

    def __init__(self, secrets, hold: int = 3):
        self.secrets, self.hold = list(secrets), hold
        self.pending: list[str] = []

    def feed(self, line: str) -> list[str]:
        self.pending.append(line)
        if len(self.pending) <= self.hold:
            return []
        lines = redact("\n".join(self.pending), self.secrets).split("\n")
        self.pending = lines[-self.hold:]
        return lines[: -self.hold]

    def flush(self) -> list[str]:
        lines = redact("\n".join(self.pending), self.secrets).split("\n") if self.pending else []
        self.pending = []
        return lines
