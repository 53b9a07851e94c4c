"""Admin changes recorded in the append-only audit log: a mixin for every configuration model leads edit."""

from django.forms.models import model_to_dict

from . import audit


class AuditedAdmin:
    """Records additions, changes (with the fields' old and new values) and deletions made in the admin."""

    def save_model(self, request, obj, form, change):
        before = model_to_dict(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else {}
        super().save_model(request, obj, form, change)
        after = model_to_dict(obj)
        changed = {f: {"from": str(before.get(f)), "to": str(after.get(f))}
                   for f in (form.changed_data if change else after) if f in after}
        audit.record(f"admin.{'change' if change else 'add'}", request=request, obj=obj,
                     model=obj._meta.label, changes=changed)

    def delete_model(self, request, obj):
        label, pk, text = obj._meta.label, obj.pk, str(obj)
        super().delete_model(request, obj)
        audit.record("admin.delete", request=request, model=label, object_id=str(pk), repr=text)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
