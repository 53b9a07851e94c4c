from django.urls import path

from . import views

app_name = "targets"
urlpatterns = [
    path("", views.target_list, name="list"),
    path("<slug:name>/check/", views.check_now, name="check"),
]
