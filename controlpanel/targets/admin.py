from django.contrib import admin

from controlpanel.core.admin_audit import AuditedAdmin

from .models import CLASSIFICATION_FIELDS, Target


@admin.register(Target)
class TargetAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ("name", "environment", "dsn_env_var", "last_checked_at")
    list_filter = ("environment",)
    readonly_fields = ("last_check", "last_checked_at")

    def get_readonly_fields(self, request, obj=None):
        # The model refuses the change too (Target.clean); read-only here says so before anyone tries.
        if obj is not None and obj.runs.exists():
            return (*self.readonly_fields, *CLASSIFICATION_FIELDS)
        return self.readonly_fields
