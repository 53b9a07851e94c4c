from django.urls import path

from . import views

app_name = "evidence"
urlpatterns = [
    path("runs/<int:run_id>/", views.run_evidence, name="run"),
    path("runs/<int:run_id>/collect/", views.collect, name="collect"),
    path("runs/<int:run_id>/sign-off/<slug:criterion>/", views.sign_off, name="sign_off"),
]
