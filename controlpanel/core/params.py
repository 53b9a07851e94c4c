"""Reading request parameters: a value that does not parse is the client's mistake (400), never a 500."""

from django.core.exceptions import BadRequest

MAX_ID = 2**31 - 1  # PostgreSQL integer / Django AutoField upper bound


def optional_id(params, name: str) -> int | None:
    """The positive integer id in params[name], None when absent or empty; BadRequest otherwise."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise BadRequest(f"{name} must be an id")
    return int(raw)
