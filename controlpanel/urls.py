from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from controlpanel.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("health/", core_views.health, name="health"),
    path("login/", auth_views.LoginView.as_view(template_name="core/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("targets/", include("controlpanel.targets.urls")),
    path("runs/", include("controlpanel.runs.urls")),
    path("evidence/", include("controlpanel.evidence.urls")),
    path("safety/", include("controlpanel.safety.urls")),
    path("monitoring/", include("controlpanel.monitoring.urls")),
    path("leads/", include("controlpanel.leads.urls")),
    path("support/", include("controlpanel.support.urls")),
]
