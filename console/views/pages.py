"""Console pages (DESIGN §7): server-rendered, one template per page, htmx partials for the parts
that change. Reads go through processes.selectors, console.selectors and the API's FilterSets.

Every view needs a login; every role may read. Writes live in console/views/actions.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from console import selectors as console_selectors
from console.selectors import BadCursor
from processes import selectors
from processes.choices import INSTANCE_ACTIVE_STATES
from processes.filters import IncidentFilterSet, ProcessInstanceFilterSet
from processes.models import Cluster, Incident, ProcessDefinition, ProcessInstance, Variable
from processes.roles import Role, require_role

SERVER_TIMELINE_LIMIT = 200


def operations_installed() -> bool:
    """Operator actions are an app of their own (processes.operations); a console without it reads."""
    return apps.is_installed("processes.operations")


def _parse_key(raw: str) -> int:
    try:
        key = int(raw)
    except ValueError:
        raise Http404("not a key") from None
    if not 0 < key < 2**63:
        raise Http404("not a key")
    return key


def _instance_or_404(raw_key: str) -> ProcessInstance:
    return get_object_or_404(
        ProcessInstance.objects.select_related("cluster", "process_definition"), pk=_parse_key(raw_key)
    )


def _cluster_health() -> dict[int, dict[str, Any]]:
    metrics = console_selectors.proxy_metrics()
    if metrics is None:
        return {}
    clusters = metrics.get("clusters")
    if not isinstance(clusters, dict):
        return {}
    health: dict[int, dict[str, Any]] = {}
    for cluster_id, info in clusters.items():
        if isinstance(info, dict) and str(cluster_id).isdigit():
            health[int(cluster_id)] = info
    return health


# -- dashboard ---------------------------------------------------------------------------------------


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    health = _cluster_health()
    clusters = [
        {"cluster": cluster, "health": health.get(cluster.id, {}).get("health")}
        for cluster in selectors.cluster_list()
    ]
    context = {
        "counts": console_selectors.dashboard_counts(),
        "incidents_by_error": list(selectors.incidents_by_error()[:20]),
        "incidents_by_process": console_selectors.incidents_by_process(limit=20),
        "clusters": clusters,
        "proxy_published": bool(health),
        "import_lag": selectors.import_lag(),
    }
    template = "console/partials/dashboard_body.html" if request.htmx else "console/dashboard.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@login_required
@require_GET
def dashboard_series(request: HttpRequest) -> JsonResponse:
    try:
        hours = int(request.GET.get("hours", "24"))
    except ValueError:
        return JsonResponse({"error": "hours must be a whole number"}, status=400)
    series = console_selectors.dashboard_series(hours=hours)
    lag = [row.lag_seconds for row in selectors.import_lag() if row.lag_seconds is not None]
    return JsonResponse(
        {
            "bucketSeconds": series.bucket_seconds,
            "times": series.times,
            "series": series.series,
            "importLagSeconds": max(lag) if lag else None,
            "now": datetime.now(tz=UTC).timestamp(),
        }
    )


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# -- instances ---------------------------------------------------------------------------------------


@login_required
def instance_list(request: HttpRequest) -> HttpResponse:
    params = request.GET.copy()
    after = params.pop("after", [None])[-1]
    params.pop("since", None)
    filterset = ProcessInstanceFilterSet(data=params or None, queryset=ProcessInstance.objects.all())
    rows: list[ProcessInstance] = []
    next_cursor = None
    error = None
    if filterset.is_bound and not filterset.is_valid():
        error = "Some filters are not valid; nothing is listed until they are fixed."
    else:
        try:
            rows, next_cursor = console_selectors.newest_first_page(
                filterset.qs.select_related("cluster"), after=after
            )
        except BadCursor as bad:
            return HttpResponseBadRequest(str(bad))
    filter_query = urlencode([(name, value) for name, values in params.lists() for value in values])
    # "N new since you opened the list": the page remembers when it was rendered and asks for the
    # count of matching instances started after that (counted on pi_start_key_idx + the filters).
    context = {
        "filterset": filterset,
        "rows": rows,
        "next_cursor": next_cursor,
        "filter_query": filter_query,
        "filter_dict": {name: params.get(name) for name in params if params.get(name)},
        "error": error,
        "rendered_at": datetime.now(tz=UTC).isoformat(),
        "first_page": not after,
    }
    if request.htmx and after:  # type: ignore[attr-defined]
        return render(request, "console/partials/instance_rows.html", context)
    return render(request, "console/instances.html", context)


@login_required
@require_GET
def instance_list_new_count(request: HttpRequest) -> HttpResponse:
    params = request.GET.copy()
    since_text = params.pop("since", [""])[-1]
    params.pop("after", None)
    try:
        since = datetime.fromisoformat(since_text)
    except ValueError:
        return HttpResponseBadRequest("since must be an ISO 8601 time")
    filterset = ProcessInstanceFilterSet(data=params or None, queryset=ProcessInstance.objects.all())
    count = filterset.qs.filter(start_date__gt=since).count() if filterset.is_valid() else 0
    query = urlencode([(name, value) for name, values in params.lists() for value in values])
    return render(request, "console/partials/new_rows.html", {"count": count, "filter_query": query})


@login_required
def instance_detail(request: HttpRequest, key: str) -> HttpResponse:
    instance = _instance_or_404(key)
    ancestors = list(selectors.instance_ancestors(instance=instance))
    root = ancestors[0] if ancestors else instance
    context = {
        "instance": instance,
        "ancestors": ancestors[-3:],
        "hidden_ancestors": max(0, len(ancestors) - 4),
        "root": root,
        "root_children": console_selectors.child_count(instance=root),
        "tree_path_keys": {int(part) for part in instance.tree_path.split("/") if part},
        "has_diagram": bool(instance.process_definition and instance.process_definition.bpmn_xml),
        **_instance_parts(instance),
    }
    return render(request, "console/instance.html", context)


def _instance_parts(instance: ProcessInstance, *, why: bool = True, details: bool = True) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    if why:
        polls = console_selectors.job_type_polls(console_selectors.proxy_metrics())
        parts["reasons"] = console_selectors.why_stuck(
            instances=[instance], polls=polls, polls_known=polls is not None
        )
        parts["polls_known"] = polls is not None
        parts["deeper_incidents"] = console_selectors.subtree_active_incident_count(instance=instance)
    if details:
        history = console_selectors.instance_history(instance=instance)
        parts.update(
            {
                "incidents": console_selectors.instance_incidents(instance=instance),
                "jobs": console_selectors.instance_jobs(instance=instance),
                "scopes": console_selectors.variables_by_scope(instance=instance),
                "history": history,
                "history_limit": console_selectors.HISTORY_LIMIT,
                "active_steps": [element for element in history if element.state == "active"],
            }
        )
    return parts


@login_required
@require_GET
def instance_live(request: HttpRequest, key: str) -> HttpResponse:
    """The parts of the instance page that change, re-rendered after an instance.changed event."""
    instance = _instance_or_404(key)
    template = {
        "why": "console/partials/instance_why.html",
        "details": "console/partials/instance_details.html",
    }
    part = request.GET.get("part", "why")
    if part not in template:
        return HttpResponseBadRequest("part must be why or details")
    parts = _instance_parts(instance, why=part == "why", details=part == "details")
    return render(request, template[part], {"instance": instance, **parts})


@login_required
@require_GET
def instance_diagram(request: HttpRequest, key: str) -> HttpResponse:
    instance = _instance_or_404(key)
    definition = instance.process_definition
    if definition is None or not definition.bpmn_xml:
        raise Http404("the process definition of this instance is not imported (yet)")
    response = HttpResponse(definition.bpmn_xml, content_type="application/xml; charset=utf-8")
    response["Cache-Control"] = "private, max-age=3600"  # a deployed definition never changes
    return response


@login_required
@require_GET
def instance_statistics(request: HttpRequest, key: str) -> JsonResponse:
    instance = _instance_or_404(key)
    return JsonResponse(
        {"state": instance.state, "elements": console_selectors.element_statistics(instance=instance)}
    )


@login_required
@require_GET
def instance_children(request: HttpRequest, key: str) -> HttpResponse:
    parent_key = _parse_key(key)
    try:
        nodes, next_cursor = console_selectors.tree_children(
            parent_key=parent_key, after=request.GET.get("after")
        )
    except BadCursor as bad:
        return HttpResponseBadRequest(str(bad))
    current_text = request.GET.get("current", "")
    current = int(current_text) if current_text.isdigit() else None
    # The path of the instance the page shows: its ancestors open by themselves, the rest on a click.
    path = request.GET.get("path", "")[:4000]
    on_path = {int(part) for part in path.split("/") if part.isdigit()}
    rows = [
        {"instance": node.instance, "child_count": node.child_count, "expand": node.instance.key in on_path}
        for node in nodes
    ]
    return render(
        request,
        "console/partials/tree_children.html",
        {
            "nodes": rows,
            "next_cursor": next_cursor,
            "parent_key": parent_key,
            "current": current,
            "path": path,
        },
    )


TREE_STATES_LIMIT = 500


@login_required
@require_GET
def instance_tree_states(request: HttpRequest) -> JsonResponse:
    """States of the tree nodes on screen, so an open tree follows live changes without being
    rebuilt (and without losing what the operator expanded). One pk lookup for up to 500 keys."""
    keys = [
        int(part) for part in request.GET.get("keys", "").split(",") if part.isdigit() and len(part) <= 19
    ]
    if len(keys) > TREE_STATES_LIMIT:
        return JsonResponse({"error": f"at most {TREE_STATES_LIMIT} keys"}, status=400)
    rows = ProcessInstance.objects.filter(pk__in=keys).only("key", "state", "incident", "subtree_incident")
    return JsonResponse(
        {
            str(row.key): {
                "state": row.state,
                "label": row.get_state_display(),
                "incident": row.incident,
                "subtreeIncident": row.subtree_incident,
            }
            for row in rows
        }
    )


@login_required
@require_GET
def variable_value(request: HttpRequest, key: str) -> HttpResponse:
    variable = get_object_or_404(Variable, pk=_parse_key(key))
    value = selectors.variable_full_value(variable=variable)
    return render(
        request,
        "console/partials/variable_value.html",
        {"variable": variable, "text": json.dumps(value, indent=2, ensure_ascii=False)},
    )


# -- incidents ---------------------------------------------------------------------------------------


@login_required
def incident_groups(request: HttpRequest) -> HttpResponse:
    """Active incidents grouped by error type and message, with a bulk retry per group."""
    groups: list[dict[str, Any]] = [dict(group) for group in selectors.incidents_by_error()[:200]]
    for group in groups:
        group["filter_query"] = urlencode(
            {"state": "active", "error_type": group["error_type"], "error_message": group["error_message"]}
        )
    return render(request, "console/incidents.html", {"groups": groups})


@login_required
def incident_list(request: HttpRequest) -> HttpResponse:
    filterset = IncidentFilterSet(data=request.GET or None, queryset=Incident.objects.all())
    rows: list[Incident] = []
    if not filterset.is_bound or filterset.is_valid():
        rows = list(filterset.qs.order_by("-created_at", "-key")[:200])
    return render(
        request,
        "console/incident_list.html",
        {"filterset": filterset, "rows": rows, "filter_dict": {k: v for k, v in request.GET.items() if v}},
    )


# -- servers -----------------------------------------------------------------------------------------


@login_required
def server_detail(request: HttpRequest, serial_number: str) -> HttpResponse:
    from servers.models import Server

    server = Server.objects.filter(pk=serial_number).first()
    instances = list(selectors.server_instances(server_id=serial_number)[:SERVER_TIMELINE_LIMIT])
    if server is None and not instances:
        raise Http404("no such server")
    metrics = console_selectors.proxy_metrics()
    polls = console_selectors.job_type_polls(metrics)
    active = [instance for instance in instances if instance.state in INSTANCE_ACTIVE_STATES]
    context = {
        "server": server,
        "serial_number": serial_number,
        "instances": instances,
        "timeline": _timeline(instances),
        "reasons": console_selectors.why_stuck(instances=active, polls=polls, polls_known=polls is not None),
        "incidents": list(selectors.server_open_incidents(server_id=serial_number)[:100]),
        "limit": SERVER_TIMELINE_LIMIT,
    }
    return render(request, "console/server.html", context)


@login_required
def server_list(request: HttpRequest) -> HttpResponse:
    from servers.models import Server

    servers = Server.objects.annotate(instance_count=Count("process_instances")).order_by("serial_number")[
        :500
    ]
    return render(request, "console/servers.html", {"servers": servers})


def _timeline(instances: list[ProcessInstance]) -> dict[str, Any]:
    """A Gantt chart of the server's instances as SVG geometry (server-rendered, no script needed):
    one bar per instance from start to end (or now), ordered by tree so a child sits under its parent."""
    now = datetime.now(tz=UTC)
    dated = [(instance, instance.start_date) for instance in instances if instance.start_date is not None]
    if not dated:
        return {"bars": [], "width": 900, "height": 40, "ticks": []}
    start = min(started for _, started in dated)
    end = max((instance.end_date or now) for instance, _ in dated)
    span = max((end - start).total_seconds(), 1.0)
    label_width, chart_width, row_height = 260, 640, 22
    ordered = sorted(dated, key=lambda pair: (pair[0].root_id or pair[0].key, pair[0].tree_path))
    bars = []
    for row, (instance, started) in enumerate(ordered):
        finish = instance.end_date or now
        x = label_width + (started - start).total_seconds() / span * chart_width
        width = max(2.0, (finish - started).total_seconds() / span * chart_width)
        state = "incident" if instance.incident else instance.state
        bars.append(
            {
                "instance": instance,
                "x": round(x, 1),
                "y": 20 + row * row_height,
                "width": round(width, 1),
                "label_x": 4 + instance.depth * 12,
                "state": state,
                "running": instance.end_date is None,
            }
        )
    ticks = []
    for step in range(5):
        moment = start + timedelta(seconds=span * step / 4)
        ticks.append(
            {"x": round(label_width + chart_width * step / 4, 1), "label": moment.strftime("%m-%d %H:%M:%S")}
        )
    return {
        "bars": bars,
        "width": label_width + chart_width + 20,
        "height": 40 + len(bars) * row_height,
        "ticks": ticks,
        "axis_y": 30 + len(bars) * row_height,
    }


# -- operations, clusters ----------------------------------------------------------------------------


@login_required
def operation_list(request: HttpRequest) -> HttpResponse:
    if not operations_installed():
        return render(request, "console/operations.html", {"installed": False})
    from processes.operations.models import AuditEntry, BatchOperation, Operation

    operations = list(Operation.objects.order_by("-created_at", "-id")[:200])
    batches = list(BatchOperation.objects.order_by("-created_at", "-id")[:50])
    audit = list(AuditEntry.objects.order_by("-created_at", "-id")[:200])  # audit_created_idx
    template = "console/partials/operations_body.html" if request.htmx else "console/operations.html"  # type: ignore[attr-defined]
    return render(
        request, template, {"installed": True, "operations": operations, "batches": batches, "audit": audit}
    )


@login_required
def cluster_list(request: HttpRequest) -> HttpResponse:
    require_role(request.user, at_least=Role.ADMIN)  # DESIGN §7: clusters are the admins' page
    health = _cluster_health()
    clusters = [
        {"cluster": cluster, "metrics": health.get(cluster.id, {})}
        for cluster in Cluster.objects.order_by("id")
    ]
    return render(
        request,
        "console/clusters.html",
        {
            "clusters": clusters,
            "proxy_published": bool(health),
            "imports": selectors.partition_imports(),
            "importers": selectors.importer_processes(),
        },
    )


@login_required
@require_GET
def definition_xml(request: HttpRequest, key: str) -> HttpResponse:
    definition = get_object_or_404(ProcessDefinition, pk=_parse_key(key))
    return HttpResponse(definition.bpmn_xml, content_type="application/xml; charset=utf-8")
