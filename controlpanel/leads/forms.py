from datetime import date

from django import forms
from django.core.validators import MaxValueValidator

from controlpanel.runs.models import Run
from controlpanel.targets.models import Target


class DayField(forms.DateField):
    """A day filter; "until" adds a day, so the last representable days are refused rather than overflowing."""

    default_validators = [MaxValueValidator(date(9998, 12, 31))]

    def __init__(self, label):
        super().__init__(required=False, label=label, widget=forms.DateInput(attrs={"type": "date"}))


class HistoryFilter(forms.Form):
    target = forms.ModelChoiceField(queryset=Target.objects.all(), required=False, empty_label="any target")
    environment = forms.ChoiceField(choices=[("", "any environment"), *Target.Environment.choices], required=False)
    status = forms.ChoiceField(choices=[("", "any status"), *Run.Status.choices], required=False)
    since = DayField("From")
    until = DayField("Until")
    person = forms.CharField(required=False, max_length=150, help_text="Username: created the run or started a step.")


class AuditFilter(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search",
                        widget=forms.TextInput(attrs={"type": "search"}))
    person = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    since = DayField("From")
    until = DayField("Until")


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("refuse", "Refuse")])
    digest = forms.CharField(max_length=64, widget=forms.HiddenInput)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class EscalateForm(forms.Form):
    step = forms.CharField(max_length=64, widget=forms.HiddenInput)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
