from django.urls import path

from . import views

app_name = "safety"
urlpatterns = [
    path("", views.index, name="index"),
    path("targets/<slug:name>/", views.target_detail, name="target"),
    path("targets/<slug:name>/preflight/", views.preflight_start, name="preflight_start"),
    path("targets/<slug:name>/rehearse/", views.rehearse_start, name="rehearse_start"),
    path("preflight/<int:report_id>/", views.preflight_detail, name="preflight"),
    path("preflight/<int:report_id>/sign-off/<int:index>/", views.lint_sign_off, name="lint_sign_off"),
    path("rehearsals/<int:rehearsal_id>/", views.rehearsal_detail, name="rehearsal"),
    path("runs/<int:run_id>/rollback/", views.rollback_page, name="rollback"),
    path("runs/<int:run_id>/rollback/prepare/", views.rollback_prepare, name="rollback_prepare"),
    path("runs/<int:run_id>/rollback/confirm/", views.rollback_confirm, name="rollback_confirm"),
    path("runs/<int:run_id>/partial/", views.partial_page, name="partial"),
    path("runs/<int:run_id>/partial/<str:key>/", views.partial_start, name="partial_start"),
]
