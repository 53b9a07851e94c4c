from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "controlpanel.core"
    label = "core"
    verbose_name = "Control panel"

    def ready(self):
        from . import auth, redaction

        redaction.connect()
        auth.connect()
