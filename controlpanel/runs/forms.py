from django import forms

from controlpanel.targets.fields import TargetChoiceField

from .models import GateOverride


class NewRunForm(forms.Form):
    target = TargetChoiceField()
    window_start = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                       label="Maintenance window start (your time zone)")
    window_end = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     label="Maintenance window end (your time zone)")

    def clean(self):
        data = super().clean()
        start, end = data.get("window_start"), data.get("window_end")
        if start and end and end <= start:
            raise forms.ValidationError("The maintenance window must end after it starts.")
        return data


class OverrideForm(forms.Form):
    gate = forms.ChoiceField(choices=GateOverride.Gate.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), min_length=10)
