from django.urls import path

from . import views

app_name = "leads"
urlpatterns = [
    path("history/", views.history, name="history"),
    path("runs/<int:run_id>/timeline/", views.run_timeline, name="timeline"),
    path("runs/<int:run_id>/report.<str:fmt>", views.run_export, name="export"),
    path("runs/<int:run_id>/approvals/<str:action>/request/", views.approval_request, name="approval_request"),
    path("approvals/<int:approval_id>/decide/", views.approval_decide, name="approval_decide"),
    path("runs/<int:run_id>/escalate/", views.escalate, name="escalate"),
    path("compare/", views.compare, name="compare"),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
]
