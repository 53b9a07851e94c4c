"""Login throttling and the login audit trail."""

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from . import audit


class ThrottledBackend(AxesStandaloneBackend):
    """django-axes' lockout check for web logins. Without a request (the test client's login, a management
    command) there is no client to throttle: the next backend authenticates as usual."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _from_a_client(request) -> bool:
    # A login without a client address is a script's or the test client's force_login, not a person's.
    return request is not None and bool(audit.client_ip(request))


def _logged_in(sender, request, user, **kwargs):
    if _from_a_client(request):
        audit.record("login.success", user=user, request=request)


def _logged_out(sender, request, user, **kwargs):
    if user is not None and _from_a_client(request):
        audit.record("login.logout", user=user, request=request)


def _failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in `credentials`; the username typed is kept for the audit.
    audit.record("login.failed", request=request, attempted=str(credentials.get("username", ""))[:150])


def _locked_out(sender, request, username=None, ip_address=None, **kwargs):
    audit.record("login.locked_out", attempted=str(username or "")[:150], ip=ip_address)


def connect():
    from axes.signals import user_locked_out

    user_logged_in.connect(_logged_in, dispatch_uid="controlpanel.audit_login")
    user_logged_out.connect(_logged_out, dispatch_uid="controlpanel.audit_logout")
    user_login_failed.connect(_failed, dispatch_uid="controlpanel.audit_login_failed")
    user_locked_out.connect(_locked_out, dispatch_uid="controlpanel.audit_locked_out")
