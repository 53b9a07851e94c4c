from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [
    path("", views.index, name="index"),
    path("targets/<slug:name>/", views.target_detail, name="target"),
    path("targets/<slug:name>/check/", views.check_now, name="check"),
    path("targets/<slug:name>/troubleshooting/", views.troubleshooting, name="troubleshooting"),
    path("targets/<slug:name>/troubleshooting/refresh/", views.troubleshooting_refresh, name="troubleshooting_refresh"),
    path("tasks/<int:task_id>/done/", views.task_done, name="task_done"),
]
