"""Operator actions from the console: a confirmation dialog that says what will happen, then the live
state of the resulting operation (DESIGN §6, §7).

GET  /actions/<action>/<key>/  -> the dialog (htmx partial): what will happen, and the inputs.
POST /actions/<action>/<key>/  -> calls the action service, then shows the operation's live state.

The services check the actor's role themselves (processes.operations.services); the views check it
too, first, so a viewer's forged POST is refused with 403 before any row is touched, and viewers
never get a dialog. Bad input comes back into the dialog as an error and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from processes import services as cluster_services
from processes.choices import INCIDENT_ACTIVE_STATES, INSTANCE_ACTIVE_STATES, JobState
from processes.models import Cluster, ElementInstance, Incident, Job, ProcessDefinition, ProcessInstance
from processes.roles import Role, require_role

MAX_VARIABLES_TEXT = 256 * 1024


class ActionsNotInstalled(Exception):
    pass


def _services() -> Any:
    if not apps.is_installed("processes.operations"):
        raise ActionsNotInstalled
    from processes.operations import services

    return services


def _key(raw: str) -> int:
    try:
        key = int(raw)
    except ValueError:
        raise Http404("not a key") from None
    if not 0 < key < 2**63:
        raise Http404("not a key")
    return key


def _variables(text: str, *, required: bool = False) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        if required:
            raise ValidationError('Give the variables as a JSON object, e.g. {"fixed": true}.')
        return {}
    if len(text) > MAX_VARIABLES_TEXT:
        raise ValidationError(f"The variables are larger than {MAX_VARIABLES_TEXT // 1024} KiB.")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValidationError(f"The variables are not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValidationError("The variables must be a JSON object (name: value pairs).")
    return value


def _int(text: str, *, name: str, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValidationError(f"{name} must be a whole number.") from None
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low} and {high}.")
    return value


@dataclass(frozen=True)
class ActionSpec:
    label: str
    load: Callable[[int], Any]
    describe: Callable[[Any], str]
    fields: tuple[str, ...]
    run: Callable[[Any, Any, dict[str, str]], Any]
    danger: bool = False


def _load_incident(key: int) -> Incident:
    return get_object_or_404(Incident.objects.select_related("job"), pk=key)


def _load_element(key: int) -> ElementInstance:
    return get_object_or_404(ElementInstance, pk=key)


def _load_instance(key: int) -> ProcessInstance:
    return get_object_or_404(ProcessInstance, pk=key)


def _load_job(key: int) -> Job:
    return get_object_or_404(Job, pk=key)


def _describe_retry(incident: Incident) -> str:
    if incident.job_id:
        job = incident.job
        job_type = job.job_type if job is not None else "its"
        return (
            f"Sets the retries of the {job_type} job of step {incident.element_id} to the number below, then "
            f"resolves incident {incident.key}. A {job_type} worker can take the job again; if the cause "
            "is not fixed, the job fails again and a new incident opens."
        )
    return (
        f"Resolves incident {incident.key} ({incident.error_type}) so that the engine tries step "
        f"{incident.element_id} again with the variables as they are now. Fix the variables first, or "
        "the same incident opens again."
    )


def _describe_resolve(incident: Incident) -> str:
    return (
        f"Marks incident {incident.key} on step {incident.element_id} resolved without changing any "
        "retries: the engine tries the step again as it is."
    )


def _describe_skip(element: ElementInstance) -> str:
    return (
        f"Ends step {element.element_id} (element instance {element.key}) as if it had completed, with "
        "the variables below, and goes on along its normal outgoing path. A worker still holding its "
        "job can no longer complete it."
    )


def _describe_reassign(element: ElementInstance) -> str:
    return (
        f"Hands step {element.element_id} to another assignee or group: sets them as local variables on "
        "the step and releases its current job, so the worker for the new assignee takes it."
    )


def _describe_cancel(instance: ProcessInstance) -> str:
    active = ProcessInstance.objects.filter(
        tree_path__startswith=instance.tree_path, state__in=INSTANCE_ACTIVE_STATES
    ).count()
    return (
        f"Cancels {instance.bpmn_process_id} instance {instance.key} and every instance it called "
        f"({active} active instance{'s' if active != 1 else ''} in this subtree). Their jobs are canceled "
        "and workers holding them can no longer complete them. This cannot be undone."
    )


def _describe_set_variables(instance: ProcessInstance) -> str:
    return (
        f"Sets the variables below on {instance.bpmn_process_id} instance {instance.key} (its process "
        "scope); steps that read them later see the new values. Running steps keep what they read."
    )


def _describe_update_retries(job: Job) -> str:
    return f"Sets the retries of {job.job_type} job {job.key} (step {job.element_id}) to the number below."


def _run_retry(actor: Any, incident: Incident, data: dict[str, str]) -> Any:
    retries = _int(data.get("retries", "1"), name="Retries", low=1, high=1000)
    return _services().operation_retry(actor=actor, incident=incident, retries=retries)


def _run_resolve(actor: Any, incident: Incident, data: dict[str, str]) -> Any:
    return _services().operation_resolve_incident(actor=actor, incident=incident)


def _run_skip(actor: Any, element: ElementInstance, data: dict[str, str]) -> Any:
    variables = _variables(data.get("variables", ""))
    return _services().operation_skip(actor=actor, element_instance=element, variables=variables)


def _run_reassign(actor: Any, element: ElementInstance, data: dict[str, str]) -> Any:
    assignee = (data.get("assignee") or "").strip() or None
    groups = [group.strip() for group in (data.get("candidate_groups") or "").split(",") if group.strip()]
    if assignee is None and not groups:
        raise ValidationError("Give an assignee, candidate groups, or both.")
    return _services().operation_reassign(
        actor=actor, element_instance=element, assignee=assignee, candidate_groups=groups or None
    )


def _run_cancel(actor: Any, instance: ProcessInstance, data: dict[str, str]) -> Any:
    return _services().operation_cancel(actor=actor, process_instance=instance)


def _run_set_variables(actor: Any, instance: ProcessInstance, data: dict[str, str]) -> Any:
    variables = _variables(data.get("variables", ""), required=True)
    return _services().operation_set_variables(actor=actor, scope_key=instance.key, variables=variables)


def _run_update_retries(actor: Any, job: Job, data: dict[str, str]) -> Any:
    retries = _int(data.get("retries", "1"), name="Retries", low=0, high=1000)
    return _services().operation_update_retries(actor=actor, job=job, retries=retries)


def _describe_complete_job(job: Job) -> str:
    return (
        f"Completes {job.job_type} job {job.key} of step {job.element_id} by hand, as its worker would, with "
        "the variables below (output mappings apply), and the flow goes on. If a worker completes it "
        "first, this is refused with NOT_FOUND and nothing happens twice."
    )


def _describe_fail_job(job: Job) -> str:
    return (
        f"Fails {job.job_type} job {job.key} of step {job.element_id} by hand with the message below. With "
        "retries left a worker can take it again; with 0 retries an incident opens."
    )


def _describe_throw_error(job: Job) -> str:
    return (
        f"Throws a BPMN error with the code below from {job.job_type} job {job.key} (step {job.element_id}). "
        "An error boundary event or event subprocess with that code takes over, with the variables below; "
        "if none catches it, an incident opens."
    )


def _run_complete_job(actor: Any, job: Job, data: dict[str, str]) -> Any:
    variables = _variables(data.get("variables", ""))
    return _services().operation_complete_job(actor=actor, job=job, variables=variables)


def _run_fail_job(actor: Any, job: Job, data: dict[str, str]) -> Any:
    retries = _int(data.get("retries", "0"), name="Retries", low=0, high=1000)
    return _services().operation_fail_job(
        actor=actor, job=job, retries=retries, error_message=data.get("error_message", "")
    )


def _run_throw_error(actor: Any, job: Job, data: dict[str, str]) -> Any:
    variables = _variables(data.get("variables", ""))
    return _services().operation_throw_error(
        actor=actor,
        job=job,
        error_code=data.get("error_code", ""),
        error_message=data.get("error_message", ""),
        variables=variables,
    )


ACTIONS: dict[str, ActionSpec] = {
    "retry": ActionSpec("Retry", _load_incident, _describe_retry, ("retries",), _run_retry),
    "resolve": ActionSpec("Resolve", _load_incident, _describe_resolve, (), _run_resolve),
    "skip": ActionSpec("Skip", _load_element, _describe_skip, ("variables",), _run_skip),
    "reassign": ActionSpec(
        "Reassign", _load_element, _describe_reassign, ("assignee", "candidate_groups"), _run_reassign
    ),
    "cancel": ActionSpec("Cancel instance", _load_instance, _describe_cancel, (), _run_cancel, danger=True),
    "set-variables": ActionSpec(
        "Set variables", _load_instance, _describe_set_variables, ("variables",), _run_set_variables
    ),
    "update-retries": ActionSpec(
        "Update retries", _load_job, _describe_update_retries, ("retries",), _run_update_retries
    ),
    "complete-job": ActionSpec(
        "Complete job", _load_job, _describe_complete_job, ("variables",), _run_complete_job, danger=True
    ),
    "fail-job": ActionSpec(
        "Fail job", _load_job, _describe_fail_job, ("retries", "error_message"), _run_fail_job, danger=True
    ),
    "throw-error": ActionSpec(
        "Throw error",
        _load_job,
        _describe_throw_error,
        ("error_code", "error_message", "variables"),
        _run_throw_error,
        danger=True,
    ),
}


def _not_applicable(name: str, target: Any) -> str | None:
    """Why the action cannot apply to the target as imported now (the service checks again)."""
    if isinstance(target, Incident) and target.state not in INCIDENT_ACTIVE_STATES:
        return f"Incident {target.key} is already resolved."
    if isinstance(target, ElementInstance) and target.state not in INSTANCE_ACTIVE_STATES:
        return f"Step {target.element_id} is no longer active ({target.state})."
    if isinstance(target, ProcessInstance) and target.state not in INSTANCE_ACTIVE_STATES:
        return f"Instance {target.key} is no longer active ({target.state})."
    if isinstance(target, Job) and target.state in (JobState.COMPLETED, JobState.CANCELED):
        return f"Job {target.key} is {target.state}."
    return None


def _error_text(error: ValidationError) -> str:
    messages = error.messages if hasattr(error, "messages") else [str(error)]
    return " ".join(str(message) for message in messages)


@login_required
@require_http_methods(["GET", "POST"])
def action(request: HttpRequest, name: str, key: str) -> HttpResponse:
    spec = ACTIONS.get(name)
    if spec is None:
        raise Http404("no such action")
    # Viewers never get the dialog and their POSTs are refused before anything is loaded or written.
    require_role(request.user, at_least=Role.OPERATOR)
    target = spec.load(_key(key))
    context: dict[str, Any] = {
        "name": name,
        "spec": spec,
        "target": target,
        "key": key,
        "what_happens": spec.describe(target),
        "not_applicable": _not_applicable(name, target),
        "data": {
            "retries": "0" if name == "fail-job" else "1",
            "variables": "",
            "assignee": "",
            "candidate_groups": "",
            "error_code": "",
            "error_message": "",
        },
    }
    if request.method == "POST":
        data = {field: request.POST.get(field, "") for field in spec.fields}
        context["data"].update(data)
        try:
            operation = spec.run(request.user, target, data)
        except PermissionDenied:
            raise
        except ValidationError as error:
            context["error"] = _error_text(error)
            return render(request, "console/partials/action_dialog.html", context, status=422)
        except ActionsNotInstalled:
            context["error"] = "Operator actions are not installed on this console."
            return render(request, "console/partials/action_dialog.html", context, status=503)
        return render(
            request,
            "console/partials/operation_status.html",
            {"operation": operation, "dialog": True, "poll": _poll(operation)},
        )
    return render(request, "console/partials/action_dialog.html", context)


@login_required
def operation_status(request: HttpRequest, operation_id: int) -> HttpResponse:
    from processes.operations.models import Operation

    operation = get_object_or_404(Operation, pk=operation_id)
    return render(
        request, "console/partials/operation_status.html", {"operation": operation, "poll": _poll(operation)}
    )


# How long a page keeps asking for the importer's confirmation of a succeeded operation.
CONFIRMATION_WAIT = timedelta(minutes=2)


def _poll(operation: Any) -> bool:
    """Whether the status on screen asks again in a second: while the operation is open, and
    while a succeeded one waits for the importer to show its effect (bounded)."""
    from processes.operations.choices import OPERATION_OPEN_STATES, OperationState

    if operation.state in OPERATION_OPEN_STATES:
        return True
    return bool(
        operation.state == OperationState.SUCCEEDED
        and operation.confirm_kind
        and timezone.now() - operation.created_at < CONFIRMATION_WAIT
    )


# -- batch operations ---------------------------------------------------------------------------------

BATCH_ACTIONS = {
    "retry": "Retry every matching active incident (retries set to 1, then resolved), at the batch rate limit.",
    "resolve_incident": "Resolve every matching active incident without changing retries.",
    "cancel": "Cancel every matching active instance and everything it called.",
    "modify": "In every matching active instance with a token at the source element, cancel that token "
    "and add one before the target element (one modification per instance).",
}
MODIFY_PARAMETERS = ("source_element_id", "target_element_id")


def _filter_from(request_data: Any) -> dict[str, str]:
    ignored = {"action", "csrfmiddlewaretoken", "after", "since", *MODIFY_PARAMETERS}
    return {name: value for name, value in request_data.items() if name not in ignored and value != ""}


@login_required
@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest) -> HttpResponse:
    require_role(request.user, at_least=Role.OPERATOR)
    data = request.POST if request.method == "POST" else request.GET
    action_name = data.get("action", "")
    if action_name not in BATCH_ACTIONS:
        raise Http404("no such batch action")
    selection = _filter_from(data)
    parameters = (
        {name: data.get(name, "").strip() for name in MODIFY_PARAMETERS} if action_name == "modify" else {}
    )
    context: dict[str, Any] = {
        "action": action_name,
        "parameters": parameters,
        "what_happens": BATCH_ACTIONS[action_name],
        "selection": selection,
        "selection_json": json.dumps(selection, sort_keys=True),
    }
    try:
        services = _services()
    except ActionsNotInstalled:
        return HttpResponse("Operator actions are not installed on this console.", status=503)
    if parameters and not all(parameters.values()) and request.method == "GET":
        return render(
            request, "console/partials/batch_dialog.html", context
        )  # ask for source and target first
    try:
        context["count"] = services.batch_operation_dry_run(
            actor=request.user, action=action_name, filter=selection, parameters=parameters or None
        )
    except ValidationError as error:
        context["error"] = _error_text(error)
        return render(request, "console/partials/batch_dialog.html", context, status=422)
    if request.method == "POST":
        try:
            batch = services.batch_operation_start(
                actor=request.user, action=action_name, filter=selection, parameters=parameters
            )
        except ValidationError as error:
            context["error"] = _error_text(error)
            return render(request, "console/partials/batch_dialog.html", context, status=422)
        return render(request, "console/partials/batch_status.html", {"batch": batch, "dialog": True})
    return render(request, "console/partials/batch_dialog.html", context)


@login_required
def batch_status(request: HttpRequest, batch_id: int) -> HttpResponse:
    from processes.operations.models import BatchOperation

    batch = get_object_or_404(BatchOperation, pk=batch_id)
    if request.method == "POST":
        require_role(request.user, at_least=Role.OPERATOR)
        try:
            batch = _services().batch_operation_cancel(actor=request.user, batch=batch)
        except ValidationError as error:
            return HttpResponse(_error_text(error), status=422)
    return render(request, "console/partials/batch_progress.html", {"batch": batch})


# -- clusters (admins) ----------------------------------------------------------------------------------

CLUSTER_ACTIONS = {
    "drain": (
        "Drain",
        "Stops placing new instances on cluster {name}; its running instances, jobs and operations "
        "go on being served until they finish.",
    ),
    "enable": ("Enable", "Makes cluster {name} active again: it gets new instances by its weight."),
}


@login_required
@require_http_methods(["GET", "POST"])
def cluster_action(request: HttpRequest, cluster_id: int, name: str) -> HttpResponse:
    if name not in CLUSTER_ACTIONS:
        raise Http404("no such cluster action")
    require_role(request.user, at_least=Role.ADMIN)
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    label, description = CLUSTER_ACTIONS[name]
    context: dict[str, Any] = {
        "cluster": cluster,
        "name": name,
        "label": label,
        "what_happens": description.format(name=cluster.name),
    }
    if request.method == "POST":
        try:
            if name == "drain":
                cluster = cluster_services.cluster_drain(cluster=cluster)
            else:
                cluster = cluster_services.cluster_activate(cluster=cluster)
        except ValidationError as error:
            context["error"] = _error_text(error)
            return render(request, "console/partials/cluster_dialog.html", context, status=422)
        context["done"] = True
        context["cluster"] = cluster
    return render(request, "console/partials/cluster_dialog.html", context)


# -- modification plan (issue 19) ------------------------------------------------------------------

MODIFY_ROWS = 3  # activation rows in the form; a larger plan goes through the API


def _modify_plan_from(data: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """The plan the form describes: checked terminate boxes and filled activation rows."""
    terminate = []
    for raw in data.getlist("terminate"):
        try:
            terminate.append(int(raw))
        except ValueError:
            raise ValidationError(f"{raw!r} is not an element instance key.") from None
    activate: list[dict[str, Any]] = []
    for row in range(MODIFY_ROWS):
        element_id = (data.get(f"activate-{row}-element") or "").strip()
        if not element_id:
            continue
        item: dict[str, Any] = {"element_id": element_id}
        ancestor = (data.get(f"activate-{row}-ancestor") or "").strip()
        if ancestor:
            try:
                item["ancestor_key"] = int(ancestor)
            except ValueError:
                raise ValidationError(f"Scope {ancestor!r} is not an element instance key.") from None
        variables = _variables(data.get(f"activate-{row}-variables", ""))
        if variables:
            item["variables"] = variables
        activate.append(item)
    return activate, terminate


@login_required
@require_http_methods(["GET", "POST"])
def modify(request: HttpRequest, key: str) -> HttpResponse:
    """Build a modification plan: cancel tokens (the active steps), add tokens before elements of
    the diagram. "Preview" shows what will happen (checked as the service checks it, nothing
    written); "Apply" requests the operation."""
    require_role(request.user, at_least=Role.OPERATOR)
    services = _services()
    from processes.operations.modify import PlanRefused, read_diagram

    instance = _load_instance(_key(key))
    active = list(
        ElementInstance.objects.filter(process_instance_id=instance.key, state__in=INSTANCE_ACTIVE_STATES)
        .exclude(element_type="PROCESS")
        .order_by("key")
    )
    elements: list[Any] = []
    diagram_error = ""
    definition = (
        ProcessDefinition.objects.filter(key=instance.process_definition_id).first()
        if instance.process_definition_id is not None
        else None
    )
    try:
        if definition is None:
            raise PlanRefused("The process definition is not imported yet.", "process_instance")
        elements = read_diagram(definition.bpmn_xml, process_id=instance.bpmn_process_id).activatable()
    except PlanRefused as refused:
        diagram_error = refused.message
    context: dict[str, Any] = {
        "instance": instance,
        "active": active,
        "elements": elements,
        "diagram_error": diagram_error,
        "rows": [
            {
                "n": row,
                "element": request.POST.get(f"activate-{row}-element", ""),
                "ancestor": request.POST.get(f"activate-{row}-ancestor", ""),
                "variables": request.POST.get(f"activate-{row}-variables", ""),
            }
            for row in range(MODIFY_ROWS)
        ],
        "checked": set(request.POST.getlist("terminate")),
    }
    if request.method == "POST":
        try:
            activate, terminate = _modify_plan_from(request.POST)
            if request.POST.get("apply") != "1":
                _, _, context["plan"], _ = services.modify_preview(
                    process_instance=instance, activate=activate, terminate=terminate
                )
                return render(request, "console/partials/modify_dialog.html", context)
            operation = services.operation_modify(
                actor=request.user, process_instance=instance, activate=activate, terminate=terminate
            )
        except PermissionDenied:
            raise
        except ValidationError as error:
            context["error"] = _error_text(error)
            return render(request, "console/partials/modify_dialog.html", context, status=422)
        return render(
            request,
            "console/partials/operation_status.html",
            {"operation": operation, "dialog": True, "poll": _poll(operation)},
        )
    return render(request, "console/partials/modify_dialog.html", context)


# -- deploy and start (issue 19) -------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def deploy_and_start(request: HttpRequest) -> HttpResponse:
    """Deploy a BPMN/DMN resource to every cluster and start an instance, through the gateway
    proxy (operators and admins). The engine's refusal is shown as it gave it."""
    require_role(request.user, at_least=Role.OPERATOR)
    services = _services()
    context: dict[str, Any] = {
        "data": {"bpmn_process_id": "", "version": "-1", "variables": ""},
        "definitions": list(
            ProcessDefinition.objects.order_by("bpmn_process_id")  # one entry per process, not per version
            .values_list("bpmn_process_id", flat=True)
            .distinct()[:500]
        ),
    }
    status = 200
    if request.method == "POST":
        what = request.POST.get("what")
        try:
            if what == "deploy":
                upload = request.FILES.get("resource")
                if upload is not None:
                    if upload.size is not None and upload.size > services.MAX_RESOURCE_BYTES:
                        raise ValidationError(f"The file is larger than {services.MAX_RESOURCE_BYTES} bytes.")
                    name, content = upload.name or "", upload.read()
                else:
                    name = request.POST.get("name", "")
                    content = request.POST.get("content", "").encode()
                context["deployed"] = services.deploy_resource(actor=request.user, name=name, content=content)
            elif what == "start":
                context["data"].update({k: request.POST.get(k, "") for k in context["data"]})
                version = _int(context["data"]["version"] or "-1", name="Version", low=-1, high=2**31 - 1)
                context["started"] = services.start_instance(
                    actor=request.user,
                    bpmn_process_id=context["data"]["bpmn_process_id"],
                    version=version,
                    variables=_variables(context["data"]["variables"]),
                )
            else:
                raise ValidationError("Choose deploy or start.")
        except PermissionDenied:
            raise
        except ValidationError as error:
            context["error"] = _error_text(error)
            context["error_for"] = what
            status = 422
    return render(request, "console/deploy_start.html", context, status=status)
