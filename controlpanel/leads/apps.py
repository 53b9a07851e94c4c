from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "controlpanel.leads"
    label = "leads"
