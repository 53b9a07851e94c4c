import re

from django import forms
from django.contrib import admin

from controlpanel.core.admin_audit import AuditedAdmin

from .models import StepCommand

VARIABLE_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class StepCommandForm(forms.ModelForm):
    class Meta:
        model = StepCommand
        fields = ("name", "environment", "working_directory", "arguments", "passed_variables", "timeout_seconds")

    def clean_arguments(self):
        arguments = self.cleaned_data["arguments"]
        if not isinstance(arguments, list) or not arguments or not all(isinstance(a, str) and a for a in arguments):
            raise forms.ValidationError('A non-empty list of strings, e.g. ["npm", "run", "deploy"].')
        return arguments

    def clean_passed_variables(self):
        names = self.cleaned_data["passed_variables"] or []
        if not isinstance(names, list) or not all(isinstance(n, str) and VARIABLE_NAME.match(n) for n in names):
            raise forms.ValidationError('A list of environment variable names, e.g. ["CLOUDFLARE_API_TOKEN"].')
        return names


@admin.register(StepCommand)
class StepCommandAdmin(AuditedAdmin, admin.ModelAdmin):
    """The external commands of command steps (Workers deploy…); every change is audited."""

    form = StepCommandForm
    list_display = ("name", "environment", "working_directory", "timeout_seconds")
    list_filter = ("environment",)
