from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

# What decides which gates apply and which database is reached: fixed once the target has a run.
CLASSIFICATION_FIELDS = ("environment", "dsn_env_var")


class Target(models.Model):
    """A database the runbook is run against. Its DSN lives only in the named environment variable."""

    class Environment(models.TextChoices):
        DEMO = "demo", "Demo"
        STAGING = "staging", "Staging"
        PRODUCTION = "production", "Production"

    name = models.SlugField(max_length=63, unique=True)
    environment = models.CharField(max_length=16, choices=Environment.choices)
    dsn_env_var = models.CharField(
        "DSN environment variable",
        max_length=128,
        validators=[RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "Use an environment variable name, not a DSN.")],
        help_text="Name of the environment variable holding the connection string (never the DSN itself).",
    )
    service_key_env_var = models.CharField(
        max_length=128,
        blank=True,
        default="SUPABASE_SERVICE_KEY",
        help_text="Environment variable holding the service role key the Workers use (checked for presence only).",
    )
    notes = models.TextField(blank=True)
    last_check = models.JSONField(null=True, blank=True, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.clean()  # also for code paths that skip forms
        super().save(*args, **kwargs)

    @property
    def is_production(self) -> bool:
        return self.environment == self.Environment.PRODUCTION

    def classification_changes(self) -> dict:
        """{field: (stored, new)} for the classification fields this unsaved instance changes."""
        if self.pk is None:
            return {}
        stored = type(self).objects.filter(pk=self.pk).values(*CLASSIFICATION_FIELDS).first() or {}
        return {f: (stored[f], getattr(self, f)) for f in CLASSIFICATION_FIELDS
                if f in stored and stored[f] != getattr(self, f)}

    def clean(self):
        # Runs trust what the target was when they were created (gates, evidence, approvals): once one exists,
        # re-classifying the target or pointing it at another database is a new target, not an edit.
        changes = self.classification_changes()
        if changes and self.runs.exists():
            raise ValidationError({f: "Fixed once the target has a run: create a new target instead."
                                   for f in changes})
