"""Sessions end after SESSION_IDLE_MINUTES without a request."""

import time

REFRESH_SECONDS = 60  # slide the expiry at most once a minute: polling pages do not write a session per poll


class IdleSessionMiddleware:
    """Django expires a session SESSION_COOKIE_AGE after its last save; saving it again on activity turns
    that into an idle timeout."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is not None and user is not None and user.is_authenticated:
            now = int(time.time())
            if now - session.get("_seen", 0) >= REFRESH_SECONDS:
                session["_seen"] = now
        return response
