from django import forms

from controlpanel.runs.models import Run
from controlpanel.targets.models import Target


class HistoryFilter(forms.Form):
    target = forms.ModelChoiceField(queryset=Target.objects.all(), required=False, empty_label="any target")
    environment = forms.ChoiceField(choices=[("", "any environment"), *Target.Environment.choices], required=False)
    status = forms.ChoiceField(choices=[("", "any status"), *Run.Status.choices], required=False)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))
    person = forms.CharField(required=False, max_length=150, help_text="Username: created the run or started a step.")


class AuditFilter(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search",
                        widget=forms.TextInput(attrs={"type": "search"}))
    person = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("refuse", "Refuse")])
    digest = forms.CharField(max_length=64, widget=forms.HiddenInput)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class EscalateForm(forms.Form):
    step = forms.CharField(max_length=64, widget=forms.HiddenInput)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
