from django.contrib import admin

from .models import EvidenceReport, SignOff, Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ("run", "label", "taken_at")
    list_filter = ("label",)
    readonly_fields = ("run", "label", "taken_at", "attempt", "data")


@admin.register(EvidenceReport)
class EvidenceReportAdmin(admin.ModelAdmin):
    list_display = ("run", "kind", "collected_at", "passed", "seconds")
    list_filter = ("kind", "passed")
    readonly_fields = ("run", "kind", "collected_at", "passed", "error", "seconds", "data")


@admin.register(SignOff)
class SignOffAdmin(admin.ModelAdmin):
    list_display = ("run", "criterion", "met", "signed_by", "signed_at")
    readonly_fields = ("run", "criterion", "met", "note", "signed_by", "signed_at")
