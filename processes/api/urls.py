"""/api/ routes: v1 resources, the OpenAPI schema and its docs (served from vendored static files)."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from processes.api import errors, views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("process-definitions", views.ProcessDefinitionViewSet, basename="process-definition")
router.register("process-instances", views.ProcessInstanceViewSet, basename="process-instance")
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("servers", views.ServerViewSet, basename="server")
router.register("element-instances", views.ElementInstanceViewSet, basename="element-instance")
router.register("jobs", views.JobViewSet, basename="job")
router.register("messages", views.MessageViewSet, basename="message")
router.register("operations", views.OperationViewSet, basename="operation")
router.register("batch-operations", views.BatchOperationViewSet, basename="batch-operation")

urlpatterns = [
    path("v1/", include(router.urls)),
    # One object, not a collection: routed by hand so the schema does not describe it as a list.
    path("v1/stats/", views.StatsViewSet.as_view({"get": "summary"}), name="stats"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    re_path(r"^.*$", errors.not_found),
]
