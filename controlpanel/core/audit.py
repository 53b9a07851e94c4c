"""The one place that writes audit events."""

from controlpanel.targets.secrets import redact

from .models import AuditEvent


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(action: str, *, user=None, request=None, obj=None, **detail) -> AuditEvent:
    if request is not None and user is None:
        user = request.user
    if user is not None and not user.is_authenticated:
        user = None
    return AuditEvent.objects.create(
        user=user,
        username=user.get_username() if user else "system",
        ip=client_ip(request),
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=redact(str(obj))[:200] if obj is not None else "",
        detail=detail,
    )
