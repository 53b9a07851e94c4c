from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "controlpanel.support"
    label = "support"
    verbose_name = "Support: membership lookups, contacts and escalation"

    def ready(self):
        from controlpanel.core import roles
        from controlpanel.core.extensions import NavEntry, add_nav

        add_nav(NavEntry("Membership lookup", "support:lookup", roles.LOOKUP_MEMBERSHIPS, "lookup", order=60))
