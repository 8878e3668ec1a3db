"""URLs of the console pages (included by console/urls.py)."""

from django.urls import path

from console.views import actions, migrate, pages

urlpatterns = [
    path("dashboard/series.json", pages.dashboard_series, name="dashboard-series"),
    path("dashboard/body", pages.dashboard, name="dashboard-body"),
    path("instances/", pages.instance_list, name="instances"),
    path("instances/new-count", pages.instance_list_new_count, name="instances-new-count"),
    path("instances/tree-states.json", pages.instance_tree_states, name="instance-tree-states"),
    path("instances/<str:key>/", pages.instance_detail, name="instance"),
    path("instances/<str:key>/live", pages.instance_live, name="instance-live"),
    path("instances/<str:key>/diagram.bpmn", pages.instance_diagram, name="instance-diagram"),
    path("instances/<str:key>/statistics.json", pages.instance_statistics, name="instance-statistics"),
    path("instances/<str:key>/children", pages.instance_children, name="instance-children"),
    path("variables/<str:key>/value", pages.variable_value, name="variable-value"),
    path("incidents/", pages.incident_groups, name="incidents"),
    path("incidents/list", pages.incident_list, name="incident-list"),
    path("servers/", pages.server_list, name="servers"),
    path("servers/<str:serial_number>/", pages.server_detail, name="server"),
    path("operations/", pages.operation_list, name="operations"),
    path("operations/<int:operation_id>/status", actions.operation_status, name="operation-status"),
    path("batches/new", actions.batch_new, name="batch-new"),
    path("batches/<int:batch_id>/", actions.batch_status, name="batch-status"),
    path("clusters/", pages.cluster_list, name="clusters"),
    path("clusters/<int:cluster_id>/<str:name>", actions.cluster_action, name="cluster-action"),
    path("actions/<str:name>/<str:key>/", actions.action, name="action"),
    path("instances/<str:key>/modify", actions.modify, name="modify"),
    path("instances/<str:key>/migrate", migrate.migrate, name="migrate"),
    path("batches/migrate", migrate.batch_migrate, name="batch-migrate"),
    path("deploy/", actions.deploy_and_start, name="deploy-start"),
]
