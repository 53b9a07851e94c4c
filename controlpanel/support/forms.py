from django import forms

from controlpanel.targets.fields import TargetChoiceField

from .models import LookupResult


class LookupForm(forms.Form):
    target = TargetChoiceField(empty_label=None)
    kind = forms.ChoiceField(choices=LookupResult.Kind.choices, initial=LookupResult.Kind.PERSON,
                             label="Look up", widget=forms.RadioSelect)
    query = forms.CharField(required=False, max_length=320, label="Email, user id, organization slug or name")
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("kind") != LookupResult.Kind.WITHOUT_MEMBERSHIP and not (data.get("query") or "").strip():
            self.add_error("query", "Enter what to look up.")
        return data
