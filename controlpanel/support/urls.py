from django.urls import path

from . import views

app_name = "support"
urlpatterns = [
    path("", views.lookup, name="lookup"),
    path("lookups/<int:lookup_id>/", views.result, name="result"),
    path("lookups/<int:lookup_id>/export.csv", views.export, name="export"),
]
