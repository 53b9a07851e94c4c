"""The admin rights leads get name models that exist (a typo or a removed model grants nothing, silently)."""

from django.apps import apps

from controlpanel.core import roles


def test_every_lead_admin_model_is_a_model_of_a_lead_admin_app():
    models = {m._meta.model_name for m in apps.get_models() if m._meta.app_label in roles.LEAD_ADMIN_APPS}
    assert roles.LEAD_ADMIN_MODELS <= models, sorted(roles.LEAD_ADMIN_MODELS - models)


def test_every_lead_admin_app_is_installed():
    labels = {config.label for config in apps.get_app_configs()}
    assert set(roles.LEAD_ADMIN_APPS) <= labels, sorted(set(roles.LEAD_ADMIN_APPS) - labels)
