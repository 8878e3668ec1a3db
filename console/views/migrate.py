"""Migration from the console (issue 19): the mapping editor for one instance and the batch
migration of every instance of a version, with a dry run.

GET  /instances/<key>/migrate     -> the editor: the instance's version's elements on the left, the
                                     target version's on the right, matched by id and type; the
                                     operator can change any row.
POST /instances/<key>/migrate     -> "Check" re-checks the plan as the engine would (per row: what
                                     happens or Zeebe's refusal), nothing written; "Migrate" requests
                                     the operation and shows its live state.
GET/POST /batches/migrate         -> the same editor for every active instance of one version; "Dry
                                     run" lists what would be migrated and what refused and why,
                                     without sending anything; "Start" starts the batch.

The editor is plain form controls re-rendered by htmx on every change (the console's CSP allows no
inline script). The checks are the services' (processes.operations.services.migration_plan /
batch_migrate_dry_run), so the page refuses exactly what the service would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from console.views.actions import _error_text, _key, _load_instance, _poll, _services
from processes.choices import INSTANCE_ACTIVE_STATES
from processes.models import ElementInstance, ProcessDefinition, ProcessInstance
from processes.roles import Role, require_role

NOT_MAPPED = ""


@dataclass
class MappingRow:
    """One row of the editor: a source element, its tokens, the chosen target and what happens."""

    element_id: str
    element_type: str
    name: str
    tokens: int
    target: str
    options: list[tuple[str, str, str]]  # target element id, type, name
    refusal: str = ""
    note: str = ""

    @property
    def target_type(self) -> str:
        return next((kind for element_id, kind, _ in self.options if element_id == self.target), "")


def _versions(bpmn_process_id: str, cluster_id: int | None = None) -> list[int]:
    query = ProcessDefinition.objects.filter(bpmn_process_id=bpmn_process_id)
    if cluster_id is not None:
        query = query.filter(cluster_id=cluster_id)
    return sorted(set(query.values_list("version", flat=True)), reverse=True)


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _posted_mapping(data: Any, source_ids: Iterable[str]) -> list[tuple[str, str]]:
    """The rows' choices: ``map-<source element id>`` = target element id, or empty: not mapped."""
    return [
        (source_id, data.get(f"map-{source_id}", "").strip())
        for source_id in source_ids
        if data.get(f"map-{source_id}", "").strip()
    ]


def _rows(
    *,
    source: Any,
    target: Any,
    mapping: list[tuple[str, str]],
    tokens: dict[str, int],
    by_element: dict[str, str],
) -> list[MappingRow]:
    chosen = dict(mapping)
    options = target.mappable()
    rows = []
    for element_id, element_type, name in source.mappable():
        row = MappingRow(
            element_id=element_id,
            element_type=element_type,
            name=name,
            tokens=tokens.get(element_id, 0),
            target=chosen.get(element_id, NOT_MAPPED),
            options=options,
            refusal=by_element.get(element_id, ""),
        )
        if not row.refusal and row.target and row.target_type != element_type:
            # Zeebe checks only the elements with a token; say it before one gets there.
            row.note = f"different type ({row.target_type}): refused for an instance with a token here"
        rows.append(row)
    return rows


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def migrate(request: HttpRequest, key: str) -> HttpResponse:
    """The mapping editor for one instance; Check, then Migrate."""
    require_role(request.user, at_least=Role.OPERATOR)
    services = _services()
    instance = _load_instance(_key(key))
    data = request.POST if request.method == "POST" else request.GET
    versions = [v for v in _versions(instance.bpmn_process_id, instance.cluster_id) if v != instance.version]
    target_version = _int_or_none(data.get("target_version"))
    if target_version is None and versions:
        target_version = versions[0]
    context: dict[str, Any] = {
        "instance": instance,
        "versions": versions,
        "target_version": target_version,
        "rows": [],
        "source_label": f"Version {instance.version}",
        "target_label": f"version {target_version}",
    }
    if target_version is None:
        context["error"] = f"{instance.bpmn_process_id} has no other version on this cluster to migrate to."
        return _render(request, "console/partials/migrate_dialog.html", context)
    # A changed target version starts from its own automatic matching.
    same_target = _int_or_none(data.get("shown_version")) == target_version
    try:
        plan = services.migration_plan(process_instance=instance, target_version=target_version)
        if request.method == "POST" and same_target:
            mapping = _posted_mapping(
                data, [element_id for element_id, _, _ in plan.source_diagram.mappable()]
            )
            plan = services.migration_plan(
                process_instance=instance,
                target_version=target_version,
                mapping=[{"source_element_id": s, "target_element_id": t} for s, t in mapping],
            )
    except ValidationError as error:
        context["error"] = _error_text(error)
        return _render(request, "console/partials/migrate_dialog.html", context, status=422)
    tokens: dict[str, int] = {}
    for active in plan.active:
        tokens[active.element_id] = tokens.get(active.element_id, 0) + 1
    context.update(
        plan=plan,
        rows=_rows(
            source=plan.source_diagram,
            target=plan.target_diagram,
            mapping=plan.mapping,
            tokens=tokens,
            by_element=plan.check.by_element,
        ),
        refusal=plan.check.refusal,
        lines=plan.check.lines,
    )
    if request.method == "POST" and request.POST.get("apply") == "1" and same_target:
        try:
            operation = services.operation_migrate(
                actor=request.user,
                process_instance=instance,
                target_version=target_version,
                mapping=[{"source_element_id": s, "target_element_id": t} for s, t in plan.mapping],
            )
        except PermissionDenied:
            raise
        except ValidationError as error:
            context["error"] = _error_text(error)
            return _render(request, "console/partials/migrate_dialog.html", context, status=422)
        return render(
            request,
            "console/partials/operation_status.html",
            {"operation": operation, "dialog": True, "poll": _poll(operation)},
        )
    return _render(request, "console/partials/migrate_dialog.html", context)


def _batch_selection(data: Any) -> tuple[str, int | None]:
    return (data.get("bpmn_process_id") or "").strip(), _int_or_none(data.get("version"))


@login_required
@require_http_methods(["GET", "POST"])
def batch_migrate(request: HttpRequest) -> HttpResponse:
    """Every active instance of one version: the mapping editor, a dry run, then the batch."""
    require_role(request.user, at_least=Role.OPERATOR)
    services = _services()
    from processes.operations.migrate import auto_mapping, read_migration_diagram
    from processes.operations.modify import PlanRefused

    data = request.POST if request.method == "POST" else request.GET
    process_id, source_version = _batch_selection(data)
    context: dict[str, Any] = {"process_id": process_id, "source_version": source_version, "rows": []}
    if not process_id or source_version is None:
        context["error"] = (
            "Filter the list by process and version first: a batch migration moves one version."
        )
        return _render(request, "console/partials/batch_migrate_dialog.html", context)
    versions = [v for v in _versions(process_id) if v != source_version]
    target_version = _int_or_none(data.get("target_version"))
    if target_version is None and versions:
        target_version = versions[0]
    context.update(
        versions=versions,
        target_version=target_version,
        source_label=f"Version {source_version}",
        target_label=f"version {target_version}",
    )
    source_def = ProcessDefinition.objects.filter(bpmn_process_id=process_id, version=source_version).first()
    target_def = (
        ProcessDefinition.objects.filter(bpmn_process_id=process_id, version=target_version).first()
        if target_version is not None
        else None
    )
    if source_def is None or target_def is None:
        context["error"] = (
            f"{process_id} has no version {source_version if source_def is None else target_version} imported."
        )
        return _render(request, "console/partials/batch_migrate_dialog.html", context)
    try:
        source = read_migration_diagram(source_def.bpmn_xml, process_id=process_id)
        target = read_migration_diagram(target_def.bpmn_xml, process_id=process_id)
    except PlanRefused as refused:
        context["error"] = refused.message
        return _render(request, "console/partials/batch_migrate_dialog.html", context, status=422)
    same_target = _int_or_none(data.get("shown_version")) == target_version
    if request.method == "POST" and same_target:
        mapping = _posted_mapping(data, [element_id for element_id, _, _ in source.mappable()])
    else:
        mapping = sorted(auto_mapping(source, target).items())
    selection = {"bpmn_process_id": process_id, "version": str(source_version)}
    tokens = dict(
        ElementInstance.objects.filter(
            process_instance__in=ProcessInstance.objects.filter(
                bpmn_process_id=process_id, version=source_version, state__in=INSTANCE_ACTIVE_STATES
            ),
            state__in=INSTANCE_ACTIVE_STATES,
        )
        .exclude(element_type="PROCESS")
        .values("element_id")
        .annotate(n=Count("key"))
        .values_list("element_id", "n")
    )
    parameters = {"target_version": target_version, "mapping": [list(pair) for pair in mapping]}
    context.update(
        rows=_rows(source=source, target=target, mapping=mapping, tokens=tokens, by_element={}),
        selection=selection,
    )
    action = data.get("do", "") if request.method == "POST" and same_target else ""
    try:
        if action in ("dry-run", "start"):
            report = services.batch_migrate_dry_run(
                actor=request.user, filter=selection, parameters=parameters
            )
            context["report"] = report
            context["reasons"] = sorted(report.reasons.items(), key=lambda item: -item[1])
        if action == "start":
            batch = services.batch_operation_start(
                actor=request.user, action="migrate", filter=selection, parameters=parameters
            )
            return render(request, "console/partials/batch_status.html", {"batch": batch, "dialog": True})
    except PermissionDenied:
        raise
    except ValidationError as error:
        context["error"] = _error_text(error)
        return _render(request, "console/partials/batch_migrate_dialog.html", context, status=422)
    return _render(request, "console/partials/batch_migrate_dialog.html", context)
