from django.core.validators import RegexValidator
from django.db import models


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

    @property
    def is_production(self) -> bool:
        return self.environment == self.Environment.PRODUCTION
