from django.contrib import admin

from controlpanel.core.admin_audit import AuditedAdmin

from .models import HealthCheck, PostMigrationTask, TroubleshootingResult


@admin.register(HealthCheck)
class HealthCheckAdmin(admin.ModelAdmin):
    list_display = ("target", "checked_at", "ok", "run", "seconds")
    list_filter = ("ok", "target")
    date_hierarchy = "checked_at"
    readonly_fields = [f.name for f in HealthCheck._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(TroubleshootingResult)
class TroubleshootingResultAdmin(admin.ModelAdmin):
    list_display = ("target", "requested_at", "status", "finished_at", "requested_by")
    list_filter = ("status", "target")
    readonly_fields = [f.name for f in TroubleshootingResult._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(PostMigrationTask)
class PostMigrationTaskAdmin(AuditedAdmin, admin.ModelAdmin):
    """Leads may reassign owners and due dates here (audited); done/undone is recorded from the run page."""

    list_display = ("text", "run", "due_at", "owner", "done_at", "done_by")
    list_filter = ("done_at",)
    readonly_fields = ("run", "key", "text", "done_at", "done_by")
