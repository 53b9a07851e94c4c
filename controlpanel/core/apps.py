from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "controlpanel.core"
    label = "core"
    verbose_name = "Control panel"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import auth, dbroles, redaction

        redaction.connect()
        auth.connect()
        post_migrate.connect(dbroles.after_migrate, sender=self, dispatch_uid="controlpanel.grant_app_role")
