from django.urls import path

from . import views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new/", views.run_new, name="new"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/live/", views.run_live, name="live"),
    path("<int:run_id>/steps/<str:key>/", views.step_detail, name="step"),
    path("<int:run_id>/steps/<str:key>/live/", views.step_live, name="step_live"),
    path("<int:run_id>/steps/<str:key>/start/", views.step_start, name="start"),
    path("<int:run_id>/steps/<str:key>/cancel/", views.step_cancel, name="cancel"),
    path("<int:run_id>/steps/<str:key>/pause/", views.step_pause, name="pause"),
    path("<int:run_id>/steps/<str:key>/mark-done/", views.step_mark_done, name="mark_done"),
    path("<int:run_id>/steps/<str:key>/sign-off/", views.step_sign_off, name="sign_off"),
    path("<int:run_id>/steps/<str:key>/investigate/", views.step_investigate, name="investigate"),
    path("<int:run_id>/steps/<str:key>/tick/<str:item>/", views.checklist_tick, name="tick"),
    path("<int:run_id>/override/", views.gate_override, name="override"),
    path("<int:run_id>/abandon/", views.run_abandon, name="abandon"),
]
