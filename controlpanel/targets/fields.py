"""A target chooser that marks production targets, so nobody picks one by accident."""

from django import forms

from .models import Target


class TargetChoiceField(forms.ModelChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", Target.objects.order_by("name"))
        super().__init__(**kwargs)

    def label_from_instance(self, target):
        return f"{target.name} — PRODUCTION" if target.is_production else target.name
