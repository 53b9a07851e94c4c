"""Pages many people poll at once, rendered once and shared: one render per key every few seconds.

``shared(key, seconds, render)`` returns the rendering of ``key`` made at most ``seconds`` ago. When it is older,
one caller renders anew while the others keep getting the previous rendering (no stampede of renders when it
expires under load). Keys must name everything a viewer sees differently (role, time zone, …); the CSRF token
is put in per request by ``with_csrf_token``, so a shared rendering never carries another viewer's token.
"""

import time
from collections.abc import Callable

from django.core.cache import cache
from django.middleware.csrf import get_token
from django.utils.safestring import SafeString, mark_safe

CSRF_PLACEHOLDER = "__shared_render_csrf__"
RENDER_LOCK_SECONDS = 30  # a renderer that died leaves the lock: the next caller renders after this


def shared(key: str, seconds: float, render: Callable[[], str], *, anew: bool = False) -> str:
    """``anew``: render now whatever is stored (this caller must see its own change) and share that rendering."""
    if seconds <= 0:
        return render()
    lock = f"{key}:rendering"
    entry = None if anew else cache.get(key)
    holds_lock = False
    if entry is not None:
        html, rendered_at = entry
        if time.time() - rendered_at < seconds:
            return html
        holds_lock = cache.add(lock, 1, timeout=RENDER_LOCK_SECONDS)
        if not holds_lock:
            return html  # another caller is rendering it anew: this one is at most a render older
    try:
        html = render()
        cache.set(key, (html, time.time()), timeout=int(seconds) + RENDER_LOCK_SECONDS)
    finally:
        if holds_lock:
            cache.delete(lock)
    return html


def with_csrf_token(request, html: str) -> SafeString:
    """A shared rendering (made with csrf_token=CSRF_PLACEHOLDER) with this request's own token."""
    return mark_safe(html.replace(CSRF_PLACEHOLDER, get_token(request)))  # noqa: S308 - our template's output
