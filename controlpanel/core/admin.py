from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log cannot be edited (the database refuses it too)."""

    list_display = ("at", "username", "action", "object_type", "object_repr", "ip")
    list_filter = ("action",)
    search_fields = ("username", "action", "object_repr")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
