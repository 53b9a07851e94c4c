from django.conf import settings
from django.db import models

from .roles import CAPABILITIES


class Capability(models.Model):
    """Holds the panel's custom permissions; no table."""

    class Meta:
        managed = False
        default_permissions = ()
        # list[tuple[str, str]] is a valid value; the stubs declare an invariant list of str-or-promise pairs.
        permissions = CAPABILITIES  # type: ignore[assignment]

    def __str__(self):
        return "capability"


class AuditEvent(models.Model):
    """Append-only record of every action; the database refuses UPDATE and DELETE (see migration 0002)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    username = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.object_repr}"
