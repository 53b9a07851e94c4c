from django.contrib import admin

from .models import Contact, EscalationLevel


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("area", "name", "role", "how_to_reach", "emergency")
    list_filter = ("area", "emergency")


@admin.register(EscalationLevel)
class EscalationLevelAdmin(admin.ModelAdmin):
    list_display = ("level", "who", "description")
