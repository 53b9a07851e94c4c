from django.contrib import admin

from .models import Target


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ("name", "environment", "dsn_env_var", "last_checked_at")
    list_filter = ("environment",)
    readonly_fields = ("last_check", "last_checked_at")
