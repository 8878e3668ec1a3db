"""Writes of the operations app: requesting operator actions, running them, batches (DESIGN §6).

Every request function is keyword-only, checks the actor's role itself (operators and admins
act), validates its input (bad input raises :class:`OperationRejected` naming the field and writes
nothing), then writes the Operation and its audit row in one transaction and queues the Celery
task on commit (:func:`enqueue_operations_on_commit`). Clusters are never called from inside a
transaction: tasks claim operations (a lease, committed), call the cluster, then record the outcome.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from processes.choices import (
    INCIDENT_ACTIVE_STATES,
    INSTANCE_ACTIVE_STATES,
    JOB_ACTIVE_STATES,
    JobState,
)
from processes.filters import IncidentFilterSet, ProcessInstanceFilterSet, filter_queryset
from processes.models import (
    Cluster,
    ElementInstance,
    Incident,
    Job,
    ProcessDefinition,
    ProcessInstance,
)
from processes.operations.bpmn import NoSingleSuccessor, successor_of
from processes.operations.choices import (
    BATCH_OPEN_STATES,
    OPERATION_OPEN_STATES,
    BatchState,
    ConfirmKind,
    OperationAction,
    OperationState,
)
from processes.operations.confirm import confirm_visible
from processes.operations.executor import OperationSnapshot, Outcome, execute_many
from processes.operations.migrate import (
    ActiveInstance,
    MigrationCheck,
    MigrationDiagram,
    auto_mapping,
    check_migration,
    parse_mapping,
    read_migration_diagram,
)
from processes.operations.models import AuditEntry, BatchOperation, Operation
from processes.operations.modify import (
    MAX_INSTRUCTIONS,
    ActiveElement,
    PlanRefused,
    check_plan,
    read_diagram,
)
from processes.roles import Role, require_role
from routing.client import Router
from routing.keys import KeyCodecError, cluster_of, from_global

logger = logging.getLogger(__name__)

# Operator input bounds: generous for real use, small enough that a pasted file is refused.
MAX_VARIABLES_BYTES = 256 * 1024
MAX_NAME_LENGTH = 255
MAX_GROUPS = 100
MAX_RETRIES = 2**31 - 1
MAX_MESSAGE_TTL_MS = 30 * 24 * 3600 * 1000  # 30 days
MAX_BATCH_RATE = 10_000.0

# Operations per Celery task message, and targets per planning step of a batch.
RUN_CHUNK = 100
PLAN_PAGE = 500

# Actions a batch can apply, and what their filter selects.
BATCH_ACTIONS = (
    OperationAction.RETRY,
    OperationAction.RESOLVE_INCIDENT,
    OperationAction.CANCEL,
    OperationAction.SET_VARIABLES,
    OperationAction.MODIFY,  # move every token of one element to another (issue 19)
    OperationAction.MIGRATE,  # every instance of a version to another version (issue 19)
)
# A batch modify checks its target element against at most this many distinct definitions up front.
BATCH_MODIFY_DEFINITIONS = 50


class OperationRejected(ValidationError):
    """Bad input for an operation; ``field`` names the offending argument (None: the request)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, code="rejected")
        self.field = field

    def as_dict(self) -> dict[str, list[str]]:
        return {self.field or "non_field_errors": [str(self.message)]}


# -- validation helpers ----------------------------------------------------------------------------


def _check_variables(variables: Any, *, field: str, allow_empty: bool = False) -> dict[str, Any]:
    if not isinstance(variables, Mapping):
        raise OperationRejected("Variables must be a JSON object (name -> value).", field)
    if not variables and not allow_empty:
        raise OperationRejected("Give at least one variable.", field)
    for name in variables:
        if not isinstance(name, str) or not name.strip():
            raise OperationRejected(f"Variable names must be non-empty strings, got {name!r}.", field)
        if len(name) > MAX_NAME_LENGTH:
            raise OperationRejected(
                f"Variable name {name[:40]!r}... is longer than {MAX_NAME_LENGTH}.", field
            )
    try:
        text = json.dumps(dict(variables), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise OperationRejected(f"Variables must be plain JSON values: {error}", field) from None
    if len(text.encode()) > MAX_VARIABLES_BYTES:
        raise OperationRejected(
            f"Variables are {len(text.encode())} bytes of JSON; at most {MAX_VARIABLES_BYTES} are accepted.",
            field,
        )
    loaded: dict[str, Any] = json.loads(text)  # a plain copy: what is stored is what is sent
    return loaded


def _check_retries(retries: Any, *, field: str = "retries") -> int:
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise OperationRejected(f"Retries must be a whole number, got {retries!r}.", field)
    if not 1 <= retries <= MAX_RETRIES:
        raise OperationRejected(f"Retries must be between 1 and {MAX_RETRIES}, got {retries}.", field)
    return retries


def _check_text(value: Any, *, field: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise OperationRejected(f"Expected text, got {type(value).__name__}.", field)
    value = value.strip()
    if not value and not allow_empty:
        raise OperationRejected("This value may not be empty.", field)
    if len(value) > MAX_NAME_LENGTH:
        raise OperationRejected(f"At most {MAX_NAME_LENGTH} characters.", field)
    return value


def _check_global_key(value: Any, *, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OperationRejected(f"A key must be an integer, got {value!r}.", field)
    try:
        cluster_id, _ = from_global(value)
    except KeyCodecError as error:
        raise OperationRejected(str(error), field) from None
    if not Cluster.objects.filter(pk=cluster_id).exists():
        raise OperationRejected(f"Key {value} belongs to cluster {cluster_id}, which is not known.", field)
    return value


def _actor_name(actor: Any) -> str:
    return str(actor.get_username())[:150]


# -- creating operations ---------------------------------------------------------------------------


def _task(name: str) -> Any:
    """A registered Celery task by name (tasks.py imports this module, not the other way round;
    the app config imports tasks.py, so they are registered in every process)."""
    return current_app.tasks[name]


def enqueue_operations_on_commit(operation_ids: Sequence[int]) -> None:
    """Queue the task(s) that run these operations once the current transaction commits.

    The one place operations reach Celery. ``robust``: a broker that is down at that moment does
    not turn a committed request into an error; the operation stays queued and the sweeper
    (tasks.sweep_operations) queues it again.
    """
    run_operations = _task("operations.run_operations")
    ids = [int(operation_id) for operation_id in operation_ids]
    for start in range(0, len(ids), RUN_CHUNK):
        chunk = ids[start : start + RUN_CHUNK]
        transaction.on_commit(functools.partial(run_operations.delay, chunk), robust=True)


def _create_operation(
    *,
    actor: Any,
    action: OperationAction,
    target_key: int | None,
    process_instance_key: int | None,
    parameters: dict[str, Any],
    confirm_kind: ConfirmKind,
    confirm_key: int | None,
) -> Operation:
    with transaction.atomic():
        operation = Operation.objects.create(
            action=action,
            actor=actor,
            actor_name=_actor_name(actor),
            cluster_id=cluster_of(target_key) if target_key else None,
            target_key=target_key,
            process_instance_key=process_instance_key,
            parameters=parameters,
            confirm_kind=confirm_kind,
            confirm_key=confirm_key,
        )
        AuditEntry.objects.create(
            actor=actor,
            actor_name=operation.actor_name,
            event="requested",
            operation=operation,
            message=f"{action.label} requested" + (f" on {target_key}" if target_key else ""),
            detail={"parameters": parameters},
        )
        enqueue_operations_on_commit([operation.id])
    return operation


def operation_retry(*, actor: Any, incident: Incident, retries: int = 1) -> Operation:
    """Retry an incident: a job incident gets ``retries`` and is resolved; any other incident is
    resolved (after the operator fixed its variables) and the engine re-attempts the step."""
    require_role(actor, at_least=Role.OPERATOR)
    retries = _check_retries(retries)
    if incident.state not in INCIDENT_ACTIVE_STATES:
        raise OperationRejected(f"Incident {incident.key} is already resolved.", "incident")
    parameters: dict[str, Any] = {"retries": retries, "job_key": incident.job_id}
    return _create_operation(
        actor=actor,
        action=OperationAction.RETRY,
        target_key=incident.key,
        process_instance_key=incident.process_instance_id,
        parameters=parameters,
        confirm_kind=ConfirmKind.INCIDENT_RESOLVED,
        confirm_key=incident.key,
    )


def operation_resolve_incident(*, actor: Any, incident: Incident) -> Operation:
    """Resolve an incident as it is (Zeebe refuses a job incident whose job has no retries left)."""
    require_role(actor, at_least=Role.OPERATOR)
    if incident.state not in INCIDENT_ACTIVE_STATES:
        raise OperationRejected(f"Incident {incident.key} is already resolved.", "incident")
    return _create_operation(
        actor=actor,
        action=OperationAction.RESOLVE_INCIDENT,
        target_key=incident.key,
        process_instance_key=incident.process_instance_id,
        parameters={},
        confirm_kind=ConfirmKind.INCIDENT_RESOLVED,
        confirm_key=incident.key,
    )


def operation_skip(*, actor: Any, element_instance: ElementInstance, variables: dict[str, Any]) -> Operation:
    """Skip a stuck step: terminate it and activate the element its single outgoing flow leads
    to, with ``variables`` set on the process instance, in one ModifyProcessInstance command."""
    require_role(actor, at_least=Role.OPERATOR)
    variables = _check_variables(variables, field="variables", allow_empty=True)
    if element_instance.state not in INSTANCE_ACTIVE_STATES:
        raise OperationRejected(
            f"Step '{element_instance.element_id}' ({element_instance.key}) is not active: nothing to skip.",
            "element_instance",
        )
    definition = (
        ProcessDefinition.objects.filter(key=element_instance.process_definition_key).first()
        if element_instance.process_definition_key is not None
        else None
    )
    if definition is None:
        raise OperationRejected(
            f"The process definition of step '{element_instance.element_id}' is not imported yet.",
            "element_instance",
        )
    try:
        successor = successor_of(
            definition.bpmn_xml,
            element_id=element_instance.element_id,
            element_type=element_instance.element_type,
        )
    except NoSingleSuccessor as error:
        raise OperationRejected(f"Cannot skip: {error}.", "element_instance") from None
    parameters = {
        "process_instance_key": element_instance.process_instance_id,
        "flow_scope_key": element_instance.flow_scope_key,
        "element_id": element_instance.element_id,
        "successor_id": successor.element_id,
        "variables": variables,
    }
    return _create_operation(
        actor=actor,
        action=OperationAction.SKIP,
        target_key=element_instance.key,
        process_instance_key=element_instance.process_instance_id,
        parameters=parameters,
        confirm_kind=ConfirmKind.ELEMENT_SKIPPED,
        confirm_key=element_instance.key,
    )


def operation_reassign(
    *,
    actor: Any,
    element_instance: ElementInstance,
    assignee: str | None,
    candidate_groups: list[str] | None,
) -> Operation:
    """Hand a step to another assignee and/or candidate groups: both are written as local
    variables ``assignee`` and ``candidateGroups`` on the step's scope (an omitted one is cleared,
    so the step belongs to exactly what the operator chose), then the step's job is released so a
    worker of the new assignee takes it (processes.operations.workers)."""
    require_role(actor, at_least=Role.OPERATOR)
    if assignee is not None:
        assignee = _check_text(assignee, field="assignee")
    groups: list[str] = []
    if candidate_groups is not None:
        if not isinstance(candidate_groups, list | tuple):
            raise OperationRejected("Candidate groups must be a list of group names.", "candidate_groups")
        if len(candidate_groups) > MAX_GROUPS:
            raise OperationRejected(f"At most {MAX_GROUPS} candidate groups.", "candidate_groups")
        groups = [_check_text(group, field="candidate_groups") for group in candidate_groups]
    if assignee is None and not groups:
        raise OperationRejected("Give a new assignee or at least one candidate group.", "assignee")
    if element_instance.state not in INSTANCE_ACTIVE_STATES:
        raise OperationRejected(
            f"Step '{element_instance.element_id}' ({element_instance.key}) is not active.",
            "element_instance",
        )
    job = (
        # The job a worker could take (a failed job waits for an incident, not for a worker).
        Job.objects.filter(
            element_instance_id=element_instance.key, state__in=[JobState.CREATED, JobState.ACTIVATED]
        )
        .order_by("-key")
        .first()
    )
    parameters = {
        "variables": {"assignee": assignee, "candidateGroups": groups},
        "local": True,
        "job_key": job.key if job else None,
        "job_retries": job.retries if job else None,
        "actor": _actor_name(actor),
    }
    return _create_operation(
        actor=actor,
        action=OperationAction.REASSIGN,
        target_key=element_instance.key,
        process_instance_key=element_instance.process_instance_id,
        parameters=parameters,
        confirm_kind=ConfirmKind.VARIABLES,
        confirm_key=element_instance.process_instance_id,
    )


def operation_cancel(*, actor: Any, process_instance: ProcessInstance) -> Operation:
    """Cancel a root process instance; the instances it called are terminated with it."""
    require_role(actor, at_least=Role.OPERATOR)
    if process_instance.state not in INSTANCE_ACTIVE_STATES:
        raise OperationRejected(
            f"Process instance {process_instance.key} has already ended.", "process_instance"
        )
    if process_instance.parent_id is not None:
        # Zeebe refuses to cancel a called instance (its parent would wait for ever).
        raise OperationRejected(
            f"Process instance {process_instance.key} was called by instance {process_instance.parent_id}: "
            f"cancel its root instance {process_instance.root_id} instead.",
            "process_instance",
        )
    return _create_operation(
        actor=actor,
        action=OperationAction.CANCEL,
        target_key=process_instance.key,
        process_instance_key=process_instance.key,
        parameters={},
        confirm_kind=ConfirmKind.INSTANCE_TERMINATED,
        confirm_key=process_instance.key,
    )


def operation_set_variables(
    *, actor: Any, scope_key: int, variables: dict[str, Any], local: bool = False
) -> Operation:
    """Set variables on a scope (a process instance or an element instance). ``local``: on that
    scope only; otherwise Zeebe merges them into the scope where each is already defined."""
    require_role(actor, at_least=Role.OPERATOR)
    scope_key = _check_global_key(scope_key, field="scope_key")
    variables = _check_variables(variables, field="variables")
    if not isinstance(local, bool):
        raise OperationRejected("local must be true or false.", "local")
    process_instance_key: int | None
    instance = ProcessInstance.objects.filter(key=scope_key).only("key", "state").first()
    if instance is not None:
        process_instance_key, state = instance.key, instance.state
    else:
        element = (
            ElementInstance.objects.filter(key=scope_key).only("key", "state", "process_instance").first()
        )
        if element is None:
            raise OperationRejected(
                f"No process instance or element instance with key {scope_key}.", "scope_key"
            )
        process_instance_key, state = element.process_instance_id, element.state
    if state not in INSTANCE_ACTIVE_STATES:
        raise OperationRejected(f"Scope {scope_key} is not active any more.", "scope_key")
    return _create_operation(
        actor=actor,
        action=OperationAction.SET_VARIABLES,
        target_key=scope_key,
        process_instance_key=process_instance_key,
        parameters={"variables": variables, "local": local},
        confirm_kind=ConfirmKind.VARIABLES,
        confirm_key=process_instance_key,
    )


def operation_update_retries(*, actor: Any, job: Job, retries: int) -> Operation:
    require_role(actor, at_least=Role.OPERATOR)
    retries = _check_retries(retries)
    if job.state not in JOB_ACTIVE_STATES:
        raise OperationRejected(f"Job {job.key} has ended ({job.get_state_display()}).", "job")
    return _create_operation(
        actor=actor,
        action=OperationAction.UPDATE_RETRIES,
        target_key=job.key,
        process_instance_key=job.process_instance_id,
        parameters={"retries": retries},
        confirm_kind=ConfirmKind.JOB_RETRIES,
        confirm_key=job.key,
    )


def operation_publish_message(
    *,
    actor: Any,
    name: str,
    correlation_key: str,
    variables: dict[str, Any],
    time_to_live_ms: int = 0,
) -> Operation:
    """Publish a message to every cluster (a subscription may be on any). Its effect has no key
    to watch, so it ends ``succeeded`` and is never ``confirmed``."""
    require_role(actor, at_least=Role.OPERATOR)
    name = _check_text(name, field="name")
    correlation_key = _check_text(correlation_key, field="correlation_key", allow_empty=True)
    variables = _check_variables(variables, field="variables", allow_empty=True)
    if isinstance(time_to_live_ms, bool) or not isinstance(time_to_live_ms, int):
        raise OperationRejected("time_to_live_ms must be a whole number of milliseconds.", "time_to_live_ms")
    if not 0 <= time_to_live_ms <= MAX_MESSAGE_TTL_MS:
        raise OperationRejected(
            f"time_to_live_ms must be between 0 and {MAX_MESSAGE_TTL_MS}.", "time_to_live_ms"
        )
    return _create_operation(
        actor=actor,
        action=OperationAction.PUBLISH_MESSAGE,
        target_key=None,
        process_instance_key=None,
        parameters={
            "name": name,
            "correlation_key": correlation_key,
            "variables": variables,
            "time_to_live_ms": time_to_live_ms,
        },
        confirm_kind=ConfirmKind.NONE,
        confirm_key=None,
    )


# -- by hand on a job (issue 19) -------------------------------------------------------------------

MAX_ERROR_MESSAGE = 4000
MAX_RETRY_BACKOFF_MS = 24 * 3600 * 1000


def _check_job_open(job: Job, *, verb: str) -> None:
    """Zeebe accepts complete/fail/throw only on an activatable or activated job; refused here
    first, with the reason, so nothing is queued that the engine would refuse anyway."""
    if job.state == JobState.FAILED:
        raise OperationRejected(
            f"Job {job.key} has no retries left and waits on an incident: retry the incident "
            f"(or update the job's retries) before you {verb} it.",
            "job",
        )
    if job.state not in (JobState.CREATED, JobState.ACTIVATED):
        raise OperationRejected(f"Job {job.key} has ended ({job.get_state_display()}).", "job")


def _check_message(value: Any, *, field: str) -> str:
    if not isinstance(value, str):
        raise OperationRejected(f"Expected text, got {type(value).__name__}.", field)
    if len(value) > MAX_ERROR_MESSAGE:
        raise OperationRejected(f"At most {MAX_ERROR_MESSAGE} characters.", field)
    return value.strip()


def _job_parameters(actor: Any, job: Job, **extra: Any) -> dict[str, Any]:
    return {
        "element_instance_key": job.element_instance_id,
        "element_id": job.element_id,
        "job_type": job.job_type,
        "actor": _actor_name(actor),
        **extra,
    }


def operation_complete_job(*, actor: Any, job: Job, variables: dict[str, Any]) -> Operation:
    """Complete a job by hand (its worker is gone): the step ends with ``variables``, which
    propagate as a worker's would (output mappings apply). If a worker completes it first, the
    operation fails with Zeebe's NOT_FOUND: exactly one completion ever counts."""
    require_role(actor, at_least=Role.OPERATOR)
    variables = _check_variables(variables, field="variables", allow_empty=True)
    _check_job_open(job, verb="complete")
    return _create_operation(
        actor=actor,
        action=OperationAction.COMPLETE_JOB,
        target_key=job.key,
        process_instance_key=job.process_instance_id,
        parameters=_job_parameters(actor, job, variables=variables, expect_states=[JobState.COMPLETED.value]),
        confirm_kind=ConfirmKind.JOB_ENDED,
        confirm_key=job.key,
    )


def operation_fail_job(
    *, actor: Any, job: Job, retries: int, error_message: str, retry_backoff_ms: int = 0
) -> Operation:
    """Fail a job by hand: with retries left it becomes activatable again (after the backoff);
    with 0 an incident opens with ``error_message``."""
    require_role(actor, at_least=Role.OPERATOR)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise OperationRejected(f"Retries must be a whole number from 0 to {MAX_RETRIES}.", "retries")
    error_message = _check_message(error_message, field="error_message")
    if not error_message:
        raise OperationRejected(
            "Say why the job fails: the message is shown on the job and its incident.", "error_message"
        )
    if (
        isinstance(retry_backoff_ms, bool)
        or not isinstance(retry_backoff_ms, int)
        or not 0 <= retry_backoff_ms <= MAX_RETRY_BACKOFF_MS
    ):
        raise OperationRejected(
            f"retry_backoff_ms must be a whole number from 0 to {MAX_RETRY_BACKOFF_MS}.", "retry_backoff_ms"
        )
    _check_job_open(job, verb="fail")
    return _create_operation(
        actor=actor,
        action=OperationAction.FAIL_JOB,
        target_key=job.key,
        process_instance_key=job.process_instance_id,
        parameters=_job_parameters(
            actor, job, retries=retries, error_message=error_message, retry_backoff_ms=retry_backoff_ms
        ),
        confirm_kind=ConfirmKind.JOB_FAILED,
        confirm_key=job.key,
    )


def operation_throw_error(
    *, actor: Any, job: Job, error_code: str, error_message: str = "", variables: dict[str, Any]
) -> Operation:
    """Throw a BPMN error from a job by hand: an error boundary or event subprocess with that code
    catches it (``variables`` go to the catching event's scope); uncaught, an incident opens."""
    require_role(actor, at_least=Role.OPERATOR)
    error_code = _check_text(error_code, field="error_code")
    error_message = _check_message(error_message, field="error_message")
    variables = _check_variables(variables, field="variables", allow_empty=True)
    _check_job_open(job, verb="throw an error from")
    return _create_operation(
        actor=actor,
        action=OperationAction.THROW_ERROR,
        target_key=job.key,
        process_instance_key=job.process_instance_id,
        parameters=_job_parameters(
            actor,
            job,
            error_code=error_code,
            error_message=error_message,
            variables=variables,
            expect_states=[JobState.ERROR_THROWN.value],
        ),
        confirm_kind=ConfirmKind.JOB_ENDED,
        confirm_key=job.key,
    )


# -- process instance modification (issue 19) -----------------------------------------------------


def _modify_plan_input(activate: Any, terminate: Any) -> tuple[list[dict[str, Any]], list[int]]:
    if not isinstance(activate, list | tuple):
        raise OperationRejected(
            "activate must be a list of {element_id, ancestor_key?, variables?}.", "activate"
        )
    if not isinstance(terminate, list | tuple):
        raise OperationRejected("terminate must be a list of element instance keys.", "terminate")
    if not activate and not terminate:
        raise OperationRejected("The plan is empty: add a token or cancel one.", "activate")
    if len(activate) > MAX_INSTRUCTIONS or len(terminate) > MAX_INSTRUCTIONS:
        raise OperationRejected(f"At most {MAX_INSTRUCTIONS} instructions of each kind.", "activate")
    items: list[dict[str, Any]] = []
    for item in activate:
        if not isinstance(item, Mapping):
            raise OperationRejected("Each activate instruction is an object with element_id.", "activate")
        extra = sorted(set(item) - {"element_id", "ancestor_key", "variables"})
        if extra:
            raise OperationRejected(
                f"Unknown field(s) in an activate instruction: {', '.join(extra)}.", "activate"
            )
        element_id = _check_text(item.get("element_id"), field="activate")
        ancestor = item.get("ancestor_key")
        if ancestor is not None:
            ancestor = _check_global_key(ancestor, field="activate")
        variables = _check_variables(item.get("variables") or {}, field="activate", allow_empty=True)
        items.append({"element_id": element_id, "ancestor_key": ancestor, "variables": variables})
    keys: list[int] = []
    for key in terminate:
        if isinstance(key, bool) or not isinstance(key, int):
            raise OperationRejected(f"A key must be an integer, got {key!r}.", "terminate")
        if key in keys:
            raise OperationRejected(f"Element instance {key} is listed twice.", "terminate")
        keys.append(key)
    return items, keys


def modify_preview(
    *, process_instance: ProcessInstance, activate: Any, terminate: Any
) -> tuple[list[dict[str, Any]], list[int], list[str], int]:
    """Check a modification plan against the imported diagram and active element instances:
    the normalized plan, a line per instruction saying what it does, and the key floor (the
    largest element instance key known now: what the plan activates gets a larger one)."""
    activate_items, terminate_keys = _modify_plan_input(activate, terminate)
    if process_instance.state not in INSTANCE_ACTIVE_STATES:
        raise OperationRejected(
            f"Process instance {process_instance.key} has already ended.", "process_instance"
        )
    definition = (
        ProcessDefinition.objects.filter(key=process_instance.process_definition_id).first()
        if process_instance.process_definition_id is not None
        else None
    )
    if definition is None:
        raise OperationRejected(
            f"The process definition of instance {process_instance.key} is not imported yet.",
            "process_instance",
        )
    try:
        diagram = read_diagram(definition.bpmn_xml, process_id=process_instance.bpmn_process_id)
        elements = list(
            ElementInstance.objects.filter(process_instance_id=process_instance.key).values_list(
                "key", "element_id", "element_type", "flow_scope_key", "state"
            )
        )
        active = {
            key: ActiveElement(key, element_id, element_type, flow_scope)
            for key, element_id, element_type, flow_scope, state in elements
            if state in INSTANCE_ACTIVE_STATES and element_type != "PROCESS"
        }
        lines = check_plan(
            diagram=diagram,
            process_instance_key=process_instance.key,
            active=active,
            activate=activate_items,
            terminate=terminate_keys,
        )
    except PlanRefused as refused:
        raise OperationRejected(refused.message, refused.field) from None
    key_floor = max([process_instance.key, *(key for key, *_ in elements)])
    return activate_items, terminate_keys, lines, key_floor


def operation_modify(
    *, actor: Any, process_instance: ProcessInstance, activate: list[dict[str, Any]], terminate: list[int]
) -> Operation:
    """Apply a modification plan as one ModifyProcessInstance: add tokens before elements
    (``activate``: element_id, optional ancestor_key of the scope instance, optional variables set
    on the process instance) and cancel tokens (``terminate``: element instance keys). What Zeebe
    would refuse is refused here first, with its reason, and nothing is written."""
    require_role(actor, at_least=Role.OPERATOR)
    activate_items, terminate_keys, lines, key_floor = modify_preview(
        process_instance=process_instance, activate=activate, terminate=terminate
    )
    return _create_operation(
        actor=actor,
        action=OperationAction.MODIFY,
        target_key=process_instance.key,
        process_instance_key=process_instance.key,
        parameters={
            "activate": activate_items,
            "terminate": terminate_keys,
            "key_floor": key_floor,
            "plan": lines,
        },
        confirm_kind=ConfirmKind.MODIFIED,
        confirm_key=process_instance.key,
    )


# -- process instance migration (issue 19) --------------------------------------------------------


@dataclass
class MigrationPlan:
    """A migration plan for one instance, checked as the engine would check it: ``check.refusal``
    is Zeebe's reason when it would be refused. The diagrams are the editor's two columns."""

    process_instance: ProcessInstance
    source: ProcessDefinition
    target: ProcessDefinition
    source_diagram: MigrationDiagram
    target_diagram: MigrationDiagram
    mapping: list[tuple[str, str]]
    check: MigrationCheck
    active: list[ActiveInstance]


class _DiagramCache:
    """Definitions read once per request or planning page (their XML never changes)."""

    def __init__(self) -> None:
        self.diagrams: dict[int, MigrationDiagram] = {}
        self.definitions: dict[int, ProcessDefinition | None] = {}
        # (cluster id, bpmn process id) -> the target version's definition there
        self.targets: dict[tuple[int, str], ProcessDefinition | None] = {}

    def definition(self, key: int) -> ProcessDefinition | None:
        """One query per distinct definition, not per instance (a batch page shares a few)."""
        if key not in self.definitions:
            self.definitions[key] = ProcessDefinition.objects.filter(key=key).first()
        return self.definitions[key]

    def get(self, definition: ProcessDefinition, *, field: str) -> MigrationDiagram:
        if definition.key not in self.diagrams:
            try:
                self.diagrams[definition.key] = read_migration_diagram(
                    definition.bpmn_xml, process_id=definition.bpmn_process_id
                )
            except PlanRefused as refused:
                raise OperationRejected(
                    f"{definition.bpmn_process_id} version {definition.version}: {refused.message}", field
                ) from None
        return self.diagrams[definition.key]


def _check_version(value: Any, *, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise OperationRejected(f"A version is a whole number from 1, got {value!r}.", field)
    return value


def migration_target(
    *,
    process_instance: ProcessInstance,
    target_version: Any = None,
    target_process_definition_key: Any = None,
) -> ProcessDefinition:
    """The target definition on the instance's own cluster: by version of the same process, or by
    key (a definition key names one cluster's copy; another cluster's copy cannot be used)."""
    if target_process_definition_key is not None:
        key = _check_global_key(target_process_definition_key, field="target_process_definition_key")
        definition = ProcessDefinition.objects.filter(key=key).first()
        if definition is None:
            raise OperationRejected(
                f"No process definition with key {key} is imported.", "target_process_definition_key"
            )
        if definition.cluster_id != process_instance.cluster_id:
            raise OperationRejected(
                f"Definition {key} is cluster {definition.cluster_id}'s copy; instance {process_instance.key} "
                f"runs on cluster {process_instance.cluster_id}. Give target_version instead.",
                "target_process_definition_key",
            )
        return definition
    if target_version is None:
        raise OperationRejected("Give target_version (or target_process_definition_key).", "target_version")
    version = _check_version(target_version, field="target_version")
    definition = ProcessDefinition.objects.filter(
        cluster_id=process_instance.cluster_id,
        bpmn_process_id=process_instance.bpmn_process_id,
        version=version,
    ).first()
    if definition is None:
        raise OperationRejected(
            f"Version {version} of {process_instance.bpmn_process_id} is not deployed on cluster "
            f"{process_instance.cluster_id} (or not imported yet).",
            "target_version",
        )
    return definition


def _active_instances(instance_keys: Sequence[int]) -> dict[int, list[ActiveInstance]]:
    """Active element instances per process instance, with their incident flag (two queries)."""
    rows = list(
        ElementInstance.objects.filter(
            process_instance_id__in=list(instance_keys), state__in=INSTANCE_ACTIVE_STATES
        )
        .exclude(element_type="PROCESS")
        .values_list("process_instance_id", "key", "element_id", "element_type", "flow_scope_key")
    )
    with_incident = set(
        Incident.objects.filter(
            process_instance_id__in=list(instance_keys), state__in=INCIDENT_ACTIVE_STATES
        ).values_list("element_instance_id", flat=True)
    )
    active: dict[int, list[ActiveInstance]] = {key: [] for key in instance_keys}
    for instance_key, key, element_id, element_type, flow_scope_key in rows:
        active[instance_key].append(
            ActiveInstance(key, element_id, element_type, flow_scope_key, has_incident=key in with_incident)
        )
    return active


def _plan_for(
    *,
    process_instance: ProcessInstance,
    target: ProcessDefinition,
    mapping: list[tuple[str, str]] | None,
    active: list[ActiveInstance],
    diagrams: _DiagramCache,
) -> MigrationPlan:
    if process_instance.state not in INSTANCE_ACTIVE_STATES:
        raise OperationRejected(
            f"Process instance {process_instance.key} has already ended.", "process_instance"
        )
    source = (
        diagrams.definition(process_instance.process_definition_id)
        if process_instance.process_definition_id is not None
        else None
    )
    if source is None:
        raise OperationRejected(
            f"The process definition of instance {process_instance.key} is not imported yet.",
            "process_instance",
        )
    source_diagram = diagrams.get(source, field="process_instance")
    target_diagram = diagrams.get(target, field="target_version")
    if mapping is None:
        mapping = sorted(auto_mapping(source_diagram, target_diagram).items())
    check = check_migration(
        process_instance_key=process_instance.key,
        is_child=process_instance.parent_id is not None,
        source=source_diagram,
        target=target_diagram,
        active=active,
        mapping=mapping,
    )
    if check.accepted and source.key == target.key:
        check.refusal = f"Instance {process_instance.key} is already on {source.bpmn_process_id} version {source.version}."
        check.about = "target_version"
    return MigrationPlan(
        process_instance, source, target, source_diagram, target_diagram, mapping, check, active
    )


def _mapping_input(mapping: Any) -> list[tuple[str, str]] | None:
    if mapping is None:
        return None
    try:
        return parse_mapping(mapping)
    except PlanRefused as refused:
        raise OperationRejected(refused.message, "mapping_instructions") from None


def migration_plan(
    *,
    process_instance: ProcessInstance,
    target_version: Any = None,
    target_process_definition_key: Any = None,
    mapping: Any = None,
) -> MigrationPlan:
    """Check a migration plan for one instance (``mapping`` None: elements matched by id and type).
    Bad input raises OperationRejected; a plan Zeebe would refuse comes back with its reason in
    ``check.refusal`` (the editor shows it per element)."""
    target = migration_target(
        process_instance=process_instance,
        target_version=target_version,
        target_process_definition_key=target_process_definition_key,
    )
    return _plan_for(
        process_instance=process_instance,
        target=target,
        mapping=_mapping_input(mapping),
        active=_active_instances([process_instance.key])[process_instance.key],
        diagrams=_DiagramCache(),
    )


def _migrate_parameters(plan: MigrationPlan) -> dict[str, Any]:
    return {
        "target_process_definition_key": plan.target.key,
        "bpmn_process_id": plan.target.bpmn_process_id,
        "source_version": plan.source.version,
        "target_version": plan.target.version,
        "mapping": [list(pair) for pair in plan.mapping],
        "plan": plan.check.lines,
    }


def operation_migrate(
    *,
    actor: Any,
    process_instance: ProcessInstance,
    target_version: Any = None,
    target_process_definition_key: Any = None,
    mapping: Any = None,
) -> Operation:
    """Migrate a root instance to another version of its process as one MigrateProcessInstance.
    What Zeebe would refuse is refused here first, with its reason, and nothing is written."""
    require_role(actor, at_least=Role.OPERATOR)
    plan = migration_plan(
        process_instance=process_instance,
        target_version=target_version,
        target_process_definition_key=target_process_definition_key,
        mapping=mapping,
    )
    if plan.check.refusal is not None:
        raise OperationRejected(plan.check.refusal, plan.check.about)
    # A second request while the first is under way (a double click, a retried POST) would only
    # migrate the instance again onto the same definition: refuse it, naming the first.
    pending = (
        Operation.objects.filter(
            action=OperationAction.MIGRATE,
            process_instance_key=process_instance.key,
            state__in=[*OPERATION_OPEN_STATES, OperationState.SUCCEEDED],
        )
        .values_list("id", flat=True)
        .first()
    )
    if pending is not None:
        raise OperationRejected(
            f"Instance {process_instance.key} is already being migrated (operation {pending}).",
            "process_instance",
        )
    return _create_operation(
        actor=actor,
        action=OperationAction.MIGRATE,
        target_key=process_instance.key,
        process_instance_key=process_instance.key,
        parameters=_migrate_parameters(plan),
        confirm_kind=ConfirmKind.MIGRATED,
        confirm_key=process_instance.key,
    )


# What a batch migration dry run examines and lists at most.
MIGRATE_DRY_RUN_EXAMINE = 10_000
MIGRATE_DRY_RUN_LIST = 100


@dataclass
class MigrationReport:
    """A batch migration's dry run: per selected instance, migrated or refused and why."""

    count: int = 0  # instances the filter selects
    examined: int = 0
    migrate: list[dict[str, Any]] = field(default_factory=list)  # first MIGRATE_DRY_RUN_LIST
    refuse: list[dict[str, Any]] = field(default_factory=list)  # first MIGRATE_DRY_RUN_LIST
    migrate_count: int = 0
    refuse_count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason with the key blanked -> count


def _reason_kind(reason: str, key: int) -> str:
    return reason.replace(str(key), "…")


def _batch_migrate_checks(
    instances: Sequence[ProcessInstance], parameters: Mapping[str, Any], diagrams: _DiagramCache
) -> dict[int, MigrationPlan | str]:
    """Per instance of one page: its checked plan, or why it cannot even be planned."""
    active = _active_instances([instance.key for instance in instances])
    mapping = (
        [tuple(pair) for pair in parameters["mapping"]] if parameters.get("mapping") is not None else None
    )
    targets = diagrams.targets
    results: dict[int, MigrationPlan | str] = {}
    for instance in instances:
        pair = (instance.cluster_id, instance.bpmn_process_id)
        if pair not in targets:
            targets[pair] = ProcessDefinition.objects.filter(
                cluster_id=instance.cluster_id,
                bpmn_process_id=instance.bpmn_process_id,
                version=parameters["target_version"],
            ).first()
        target = targets[pair]
        if target is None:
            results[instance.key] = (
                f"Version {parameters['target_version']} of {instance.bpmn_process_id} is not deployed on "
                f"cluster {instance.cluster_id} (or not imported yet)."
            )
            continue
        try:
            results[instance.key] = _plan_for(
                process_instance=instance,
                target=target,
                mapping=mapping,
                active=active[instance.key],
                diagrams=diagrams,
            )
        except OperationRejected as error:
            results[instance.key] = str(error.message)
    return results


def batch_migrate_dry_run(
    *, actor: Any, filter: dict[str, Any], parameters: dict[str, Any]
) -> MigrationReport:
    """What a batch migration would do now, without sending anything: which instances would be
    migrated and which refused, with Zeebe's reason (the first MIGRATE_DRY_RUN_EXAMINE examined)."""
    require_role(actor, at_least=Role.OPERATOR)
    clean, _ = _batch_parameters(OperationAction.MIGRATE, parameters)
    _check_migrate_filter(filter)
    targets = _batch_targets(OperationAction.MIGRATE, filter, clean)
    report = MigrationReport(count=targets.count())
    diagrams = _DiagramCache()
    after: int | None = None
    while report.examined < min(report.count, MIGRATE_DRY_RUN_EXAMINE):
        page_query = targets.order_by("key")
        if after is not None:
            page_query = page_query.filter(key__gt=after)
        page = list(
            page_query.defer("tree_path")[: min(PLAN_PAGE, MIGRATE_DRY_RUN_EXAMINE - report.examined)]
        )
        if not page:
            break
        after = page[-1].key
        report.examined += len(page)
        for key, result in _batch_migrate_checks(page, clean, diagrams).items():
            reason = result if isinstance(result, str) else result.check.refusal
            if reason is None:
                report.migrate_count += 1
                if len(report.migrate) < MIGRATE_DRY_RUN_LIST:
                    assert not isinstance(result, str)
                    report.migrate.append({"key": key, "plan": result.check.lines})
            else:
                report.refuse_count += 1
                kind = _reason_kind(reason, key)
                report.reasons[kind] = report.reasons.get(kind, 0) + 1
                if len(report.refuse) < MIGRATE_DRY_RUN_LIST:
                    report.refuse.append({"key": key, "reason": reason})
    return report


def _check_migrate_filter(filter: Mapping[str, Any]) -> None:
    """A batch migration moves the instances of one version of one process."""
    if (
        not isinstance(filter, Mapping)
        or not filter.get("bpmn_process_id")
        or filter.get("version") in (None, "")
    ):
        raise OperationRejected(
            "A batch migration selects the instances of one version: give bpmn_process_id and version.",
            "filter",
        )


# -- deploy and start through the gateway proxy (issue 19) ----------------------------------------

MAX_RESOURCE_BYTES = 4 * 1024 * 1024  # the gateway's default message size limit
DEPLOY_SUFFIXES = (".bpmn", ".dmn")
GATEWAY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Deployed:
    key: int
    processes: list[dict[str, Any]]  # bpmn_process_id, version, process_definition_key
    decisions: list[dict[str, Any]]


@dataclass(frozen=True)
class Started:
    process_instance_key: int
    process_definition_key: int
    bpmn_process_id: str
    version: int
    cluster_id: int


def _proxy_call(method: str, request: Any, *, field: str) -> Any:
    """One call to the gateway proxy (routing layer: deploy fans out to every cluster, a start by
    process id is placed). Zeebe's refusal comes back as OperationRejected with its text."""
    import grpc
    from pyzeebe.proto import gateway_pb2_grpc

    address = getattr(settings, "FLEETFLOW_GATEWAY_PROXY_ADDRESS", "") or ""
    if not address:
        raise OperationRejected(
            "No gateway proxy is configured (FLEETFLOW_GATEWAY_PROXY_ADDRESS): deploy and start are not available.",
            None,
        )
    with grpc.insecure_channel(address) as channel:
        try:
            return getattr(gateway_pb2_grpc.GatewayStub(channel), method)(request, timeout=GATEWAY_TIMEOUT_S)
        except grpc.RpcError as error:
            code = error.code().name if hasattr(error, "code") else "UNKNOWN"
            details = error.details() if hasattr(error, "details") else str(error)
            raise OperationRejected(f"{code}: {details}", field) from None


def _audit(*, actor: Any, event: str, message: str, detail: dict[str, Any]) -> None:
    AuditEntry.objects.create(
        actor=actor, actor_name=_actor_name(actor), event=event, message=message, detail=detail
    )


def deploy_resource(*, actor: Any, name: str, content: bytes) -> Deployed:
    """Deploy a BPMN or DMN resource to every cluster through the proxy (synchronously: the
    operator sees the engine's verdict, e.g. the invalid element named, at once). Audited."""
    require_role(actor, at_least=Role.OPERATOR)
    name = _check_text(name, field="name")
    if not name.lower().endswith(DEPLOY_SUFFIXES):
        raise OperationRejected(f"The resource name must end with {' or '.join(DEPLOY_SUFFIXES)}.", "name")
    if not isinstance(content, bytes) or not content.strip():
        raise OperationRejected("The resource is empty.", "content")
    if len(content) > MAX_RESOURCE_BYTES:
        raise OperationRejected(
            f"The resource is {len(content)} bytes; at most {MAX_RESOURCE_BYTES} are accepted.", "content"
        )
    from pyzeebe.proto import gateway_pb2 as pb

    try:
        response = _proxy_call(
            "DeployResource",
            pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]),
            field="content",
        )
    except OperationRejected as refused:
        _audit(
            actor=actor,
            event="deploy_refused",
            message=f"Deploy of {name} refused",
            detail={"error": refused.message},
        )
        raise
    processes = [
        {
            "bpmn_process_id": item.process.bpmnProcessId,
            "version": item.process.version,
            "process_definition_key": item.process.processDefinitionKey,
        }
        for item in response.deployments
        if item.HasField("process")
    ]
    decisions = [
        {
            "decision_id": item.decision.dmnDecisionId,
            "version": item.decision.version,
            "decision_key": item.decision.decisionKey,
        }
        for item in response.deployments
        if item.HasField("decision")
    ]
    result = Deployed(key=int(response.key), processes=processes, decisions=decisions)
    _audit(
        actor=actor,
        event="deployed",
        message=f"Deployed {name}",
        detail={"name": name, "key": result.key, "processes": processes, "decisions": decisions},
    )
    return result


def start_instance(
    *, actor: Any, bpmn_process_id: str, version: int = -1, variables: dict[str, Any]
) -> Started:
    """Start an instance of a definition (``version`` -1: the latest) through the proxy, which
    places it on a cluster (placement applies). Audited."""
    require_role(actor, at_least=Role.OPERATOR)
    bpmn_process_id = _check_text(bpmn_process_id, field="bpmn_process_id")
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not (version == -1 or 1 <= version <= MAX_RETRIES)
    ):
        raise OperationRejected("version must be -1 (the latest) or a version number.", "version")
    variables = _check_variables(variables, field="variables", allow_empty=True)
    from pyzeebe.proto import gateway_pb2 as pb

    response = _proxy_call(
        "CreateProcessInstance",
        pb.CreateProcessInstanceRequest(
            bpmnProcessId=bpmn_process_id, version=version, variables=json.dumps(variables)
        ),
        field="bpmn_process_id",
    )
    started = Started(
        process_instance_key=int(response.processInstanceKey),
        process_definition_key=int(response.processDefinitionKey),
        bpmn_process_id=response.bpmnProcessId,
        version=int(response.version),
        cluster_id=cluster_of(int(response.processInstanceKey)),
    )
    _audit(
        actor=actor,
        event="started",
        message=f"Started {bpmn_process_id} v{started.version}: instance {started.process_instance_key}",
        detail={
            "bpmn_process_id": bpmn_process_id,
            "version": started.version,
            "process_instance_key": started.process_instance_key,
            "cluster_id": started.cluster_id,
            "variables": sorted(variables),
        },
    )
    return started


# -- running operations (called by tasks) ----------------------------------------------------------


@dataclass
class RunReport:
    """What one run of a task did; ``waiting`` ids are run again after ``retry_in`` seconds."""

    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    waiting: list[int] = field(default_factory=list)
    retry_in: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # per phase, logged by the task


def new_lease_owner(task_id: str | None = None) -> str:
    """Unique per claim: a claimer that lost its lease cannot write over its successor's outcome."""
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or '-'}:{uuid.uuid4().hex[:12]}"[:200]


def _claimable(now: Any) -> Q:
    return (
        Q(state__in=[OperationState.QUEUED, OperationState.WAITING])
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    ) | Q(state=OperationState.RUNNING, lease_expires_at__lt=now)


def operations_claim(*, operation_ids: Sequence[int], owner: str) -> list[Operation]:
    """Lease the operations that may run now (queued, waiting and due, or running with an expired
    lease) to ``owner``; the rest (finished, or leased by someone else) are left alone."""
    now = timezone.now()
    lease = timedelta(seconds=settings.FLEETFLOW_OPERATION_LEASE_SECONDS)
    with transaction.atomic():
        rows = list(
            Operation.objects.select_for_update(skip_locked=True)
            .filter(_claimable(now), id__in=list(operation_ids))
            .order_by("id")
            .values_list("id", "state")
        )
        if not rows:
            return []
        ids = [operation_id for operation_id, _ in rows]
        reclaimed = [operation_id for operation_id, state in rows if state == OperationState.RUNNING]
        if reclaimed:
            logger.warning(
                "operations %s: lease expired (worker gone?), claimed again by %s", reclaimed, owner
            )
        Operation.objects.filter(id__in=ids).update(
            state=OperationState.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + lease,
            next_attempt_at=None,
            started_at=now,
            attempts=F("attempts") + 1,
        )
    return list(Operation.objects.filter(id__in=ids).order_by("id"))


def operations_record_outcomes(*, outcomes: Iterable[Outcome], owner: str) -> None:
    """Write what the cluster answered, for the operations ``owner`` still holds.

    An operation the importer confirmed meanwhile (its effect was imported before this write)
    stays confirmed; its result is still recorded.
    """
    by_id = {outcome.operation_id: outcome for outcome in outcomes}
    if not by_id:
        return
    now = timezone.now()
    with transaction.atomic():
        # Locked in id order, as confirm.py does, so the two never deadlock.
        rows = list(
            Operation.objects.select_for_update()
            .filter(id__in=sorted(by_id), lease_owner=owner)
            .order_by("id")
            .values_list("id", "attempts", "batch_id")
        )
        lost = set(by_id) - {row[0] for row in rows}
        if lost:
            logger.warning(
                "operations %s: lease lost before the outcome was written; not recorded", sorted(lost)
            )
        # One UPDATE per distinct outcome (a healthy chunk has one or two), not one per row.
        groups: dict[tuple[Any, ...], list[int]] = {}
        retry_in: dict[tuple[Any, ...], float] = {}
        audits = []
        for operation_id, attempts, batch_id in rows:
            outcome = by_id[operation_id]
            group = (
                outcome.state,
                outcome.result,
                outcome.error[:10_000],
                outcome.error_code,
                outcome.already_done,
            )
            groups.setdefault(group, []).append(operation_id)
            if outcome.state == OperationState.WAITING:
                retry_in[group] = max(retry_in.get(group, 0.0), outcome.retry_in or 1.0)
            audits.append(
                AuditEntry(
                    event=str(outcome.state),
                    operation_id=operation_id,
                    batch_id=batch_id,
                    message=(outcome.error or outcome.result)[:2000],
                    detail={"attempt": attempts, "already_done": outcome.already_done}
                    | ({"code": outcome.error_code} if outcome.error_code else {}),
                )
            )
        for (state, result, error, error_code, already_done), ids in groups.items():
            waiting = state == OperationState.WAITING
            Operation.objects.filter(id__in=ids).update(
                # The importer may have confirmed it meanwhile: confirmed stays confirmed.
                state=Case(
                    When(state=OperationState.CONFIRMED, then=Value(OperationState.CONFIRMED.value)),
                    default=Value(str(state)),
                ),
                result=result,
                error=error,
                error_code=error_code,
                already_done=already_done,
                lease_owner="",
                lease_expires_at=None,
                next_attempt_at=now
                + timedelta(seconds=retry_in[(state, result, error, error_code, already_done)])
                if waiting
                else None,
                finished_at=None if waiting else now,
            )
        AuditEntry.objects.bulk_create(audits)


def cluster_router() -> Router:
    """A routing client over the clusters table (read once per call of this function)."""
    clusters = [
        {
            "id": c.id,
            "name": c.name,
            "address": c.gateway_address,
            "weight": c.weight,
            "state": c.state,
            "security": c.gateway_security or None,  # TLS/OAuth as the proxy reaches it
        }
        for c in Cluster.objects.order_by("id")
    ]
    return Router(clusters, timeout=5.0)


def operations_run(*, operation_ids: Sequence[int], owner: str) -> RunReport:
    """Claim, execute against the owning clusters, record; the body of the run task.

    ``waiting`` in the report lists every operation of ``operation_ids`` that waits for its
    cluster, including those not yet due this time (each has its own backoff), and ``retry_in``
    when the earliest is due: the task queues itself again for them.
    """
    report = RunReport()
    clock = time.perf_counter()
    claimed = operations_claim(operation_ids=operation_ids, owner=owner)
    report.claimed = len(claimed)
    report.timings_ms["claim"] = round((time.perf_counter() - clock) * 1000, 1)
    if claimed:
        snapshots = [
            OperationSnapshot(
                id=op.id,
                action=op.action,
                target_key=op.target_key,
                cluster_id=op.cluster_id,
                parameters=op.parameters,
                attempts=op.attempts,
            )
            for op in claimed
        ]
        clock = time.perf_counter()
        outcomes = execute_many(
            cluster_router(), snapshots, max_backoff=float(settings.FLEETFLOW_OPERATION_RETRY_MAX_SECONDS)
        )
        report.timings_ms["execute"] = round((time.perf_counter() - clock) * 1000, 1)
        clock = time.perf_counter()
        operations_record_outcomes(outcomes=outcomes, owner=owner)
        for outcome in outcomes:
            report.outcomes[str(outcome.state)] = report.outcomes.get(str(outcome.state), 0) + 1
        report.timings_ms["record"] = round((time.perf_counter() - clock) * 1000, 1)
        clock = time.perf_counter()
        confirm_visible(
            operation_ids=[o.operation_id for o in outcomes if o.state == OperationState.SUCCEEDED]
        )
        for batch_id in sorted({op.batch_id for op in claimed if op.batch_id is not None}):
            batch_finish_if_done(batch_id=batch_id)
        report.timings_ms["confirm_and_batch"] = round((time.perf_counter() - clock) * 1000, 1)
    now = timezone.now()
    waiting = list(
        Operation.objects.filter(id__in=list(operation_ids), state=OperationState.WAITING).values_list(
            "id", "next_attempt_at"
        )
    )
    if waiting:
        report.waiting = [operation_id for operation_id, _ in waiting]
        due = min(next_attempt or now for _, next_attempt in waiting)
        report.retry_in = max(0.1, (due - now).total_seconds())
    return report


@dataclass
class SweepReport:
    enqueued: int = 0
    batches_resumed: list[int] = field(default_factory=list)
    open_operations: bool = False
    confirmed: int = 0


def operations_sweep(*, limit: int = 5000) -> SweepReport:
    """Queue again what nobody is working on: operations whose lease expired (their worker died),
    waiting operations well past their retry time, queued ones never picked up (the broker lost
    or never got the message), and batches whose planner stopped. Idempotent: leases make a
    duplicate message harmless.

    Also confirms succeeded operations whose effect the query models show by now: an effect that
    was already there ("already done") can have been imported while the operation was still
    queued, so the importer did not match it, and committed just after the task looked.
    """
    now = timezone.now()
    overdue = now - timedelta(seconds=2 * settings.FLEETFLOW_OPERATION_RETRY_MAX_SECONDS + 30)
    forgotten = now - timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    stalled = Operation.objects.filter(
        Q(state=OperationState.RUNNING, lease_expires_at__lt=now)
        | Q(state=OperationState.WAITING, next_attempt_at__lt=overdue)
        | Q(state=OperationState.QUEUED, created_at__lt=forgotten)
    )
    ids = list(stalled.order_by("id").values_list("id", flat=True)[:limit])
    report = SweepReport(enqueued=len(ids))
    with transaction.atomic():
        if ids:
            logger.info("sweeper: queueing %d stalled operations again", len(ids))
            enqueue_operations_on_commit(ids)
        planner_stalled = now - timedelta(seconds=60)
        for batch in BatchOperation.objects.filter(state__in=BATCH_OPEN_STATES, planning_done=False).filter(
            Q(planned_at__isnull=True, created_at__lt=planner_stalled) | Q(planned_at__lt=planner_stalled)
        ):
            report.batches_resumed.append(batch.id)
            _enqueue_planner_on_commit(batch.id)
    report.open_operations = Operation.objects.filter(state__in=OPERATION_OPEN_STATES).exists()
    unconfirmed = (
        Operation.objects.filter(state=OperationState.SUCCEEDED, finished_at__lt=now - timedelta(seconds=2))
        .exclude(confirm_kind="")
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    report.confirmed = confirm_visible(operation_ids=list(unconfirmed))
    return report


# -- batches ---------------------------------------------------------------------------------------


def _batch_action(action: Any) -> OperationAction:
    try:
        parsed = OperationAction(action)
    except ValueError:
        parsed = None
    if parsed not in BATCH_ACTIONS:
        names = ", ".join(str(a.value) for a in BATCH_ACTIONS)
        raise OperationRejected(f"{action!r} is not a batch action (batch actions: {names}).", "action")
    return parsed


def _batch_targets(
    action: OperationAction, filter: Any, parameters: Mapping[str, Any] | None = None
) -> QuerySet[Any]:
    """The targets ``filter`` selects for ``action``, through the shared FilterSets (one filter
    definition for the API, the console lists and batches), narrowed to what the action can
    apply to: active incidents; active root instances (cancelling a root cancels its tree, and
    Zeebe refuses to cancel a called instance directly)."""
    try:
        if action in (OperationAction.RETRY, OperationAction.RESOLVE_INCIDENT):
            queryset: QuerySet[Any] = filter_queryset(IncidentFilterSet, filter, Incident.objects.all())
            return queryset.filter(state__in=INCIDENT_ACTIVE_STATES)
        queryset = filter_queryset(ProcessInstanceFilterSet, filter, ProcessInstance.objects.all())
        queryset = queryset.filter(state__in=INSTANCE_ACTIVE_STATES)
        if action == OperationAction.CANCEL:
            queryset = queryset.filter(parent__isnull=True)
        if action == OperationAction.MIGRATE:
            # Child instances stay selected: the dry run lists them as refused, with Zeebe's reason.
            return queryset
        if action == OperationAction.MODIFY:
            # Only instances with a token at the source element.
            source = str((parameters or {}).get("source_element_id") or "")
            queryset = queryset.filter(
                Exists(
                    ElementInstance.objects.filter(
                        process_instance_id=OuterRef("key"),
                        element_id=source,
                        state__in=INSTANCE_ACTIVE_STATES,
                    )
                )
            )
        return queryset
    except OperationRejected:
        raise
    except ValidationError as error:
        if hasattr(error, "error_dict"):
            name, messages = next(iter(error.message_dict.items()))
            raise OperationRejected(f"{'; '.join(messages)}", f"filter.{name}") from None
        raise OperationRejected("; ".join(error.messages), "filter") from None


def _batch_parameters(action: OperationAction, parameters: Any) -> tuple[dict[str, Any], float | None]:
    if not isinstance(parameters, Mapping):
        raise OperationRejected("Parameters must be a JSON object.", "parameters")
    allowed = {"rate_per_second"}
    if action == OperationAction.RETRY:
        allowed |= {"retries"}
    if action == OperationAction.SET_VARIABLES:
        allowed |= {"variables", "local"}
    if action == OperationAction.MODIFY:
        allowed |= {"source_element_id", "target_element_id"}
    if action == OperationAction.MIGRATE:
        allowed |= {"target_version", "mapping"}
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise OperationRejected(
            f"Unknown parameter(s) for {action.value}: {', '.join(unknown)}.", "parameters"
        )
    rate = parameters.get("rate_per_second")
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= MAX_BATCH_RATE:
            raise OperationRejected(
                f"rate_per_second must be a number above 0 and at most {MAX_BATCH_RATE:g}.",
                "parameters.rate_per_second",
            )
        rate = float(rate)
    clean: dict[str, Any] = {}
    if action == OperationAction.RETRY:
        clean["retries"] = _check_retries(parameters.get("retries", 1), field="parameters.retries")
    if action == OperationAction.SET_VARIABLES:
        clean["variables"] = _check_variables(parameters.get("variables"), field="parameters.variables")
        local = parameters.get("local", False)
        if not isinstance(local, bool):
            raise OperationRejected("local must be true or false.", "parameters.local")
        clean["local"] = local
    if action == OperationAction.MODIFY:
        source = _check_text(parameters.get("source_element_id", ""), field="parameters.source_element_id")
        target = _check_text(parameters.get("target_element_id", ""), field="parameters.target_element_id")
        if source == target:
            raise OperationRejected("Source and target are the same element.", "parameters.target_element_id")
        clean.update(source_element_id=source, target_element_id=target)
    if action == OperationAction.MIGRATE:
        clean["target_version"] = _check_version(
            parameters.get("target_version"), field="parameters.target_version"
        )
        mapping = parameters.get("mapping")
        # None: each instance's elements are matched by id and type with the target's.
        clean["mapping"] = None if mapping is None else [list(pair) for pair in _mapping_input(mapping) or []]
    return clean, rate


def batch_operation_dry_run(
    *, actor: Any, action: str, filter: dict[str, Any], parameters: dict[str, Any] | None = None
) -> int:
    """How many targets a batch with this action and filter would have now (a batch modify
    needs its ``parameters``: only instances with a token at the source element count)."""
    require_role(actor, at_least=Role.OPERATOR)
    batch_action = _batch_action(action)
    clean = (
        _batch_parameters(batch_action, parameters or {})[0]
        if batch_action in (OperationAction.MODIFY, OperationAction.MIGRATE)
        else {}
    )
    if batch_action == OperationAction.MIGRATE:
        _check_migrate_filter(filter)
    return _batch_targets(batch_action, filter, clean).count()


def _check_batch_modify(targets: QuerySet[Any], parameters: Mapping[str, Any]) -> None:
    """Refuse a batch move Zeebe would refuse for every instance (unknown or unsupported target
    element), checked on the diagrams of the selected instances' definitions."""
    definition_keys = list(
        targets.order_by()
        .values_list("process_definition_id", flat=True)
        .distinct()[:BATCH_MODIFY_DEFINITIONS]
    )
    for definition in ProcessDefinition.objects.filter(key__in=[k for k in definition_keys if k is not None]):
        try:
            diagram = read_diagram(definition.bpmn_xml, process_id=definition.bpmn_process_id)
            check_plan(
                diagram=diagram,
                process_instance_key=0,
                active={},
                activate=[{"element_id": parameters["target_element_id"]}],
                terminate=[],
            )
        except PlanRefused as refused:
            raise OperationRejected(
                f"{definition.bpmn_process_id} version {definition.version}: {refused.message}",
                "parameters.target_element_id",
            ) from None


def _enqueue_planner_on_commit(batch_id: int, countdown: float | None = None) -> None:
    plan_batch = _task("operations.plan_batch")
    transaction.on_commit(
        functools.partial(plan_batch.apply_async, (batch_id,), countdown=countdown), robust=True
    )


def batch_operation_start(
    *, actor: Any, action: str, filter: dict[str, Any], parameters: dict[str, Any]
) -> BatchOperation:
    """Start a batch: count its targets (the dry run), record who asked, then a planner task
    turns targets into operations a page at a time (``parameters.rate_per_second`` paces it)."""
    require_role(actor, at_least=Role.OPERATOR)
    batch_action = _batch_action(action)
    clean, rate = _batch_parameters(batch_action, parameters)
    targets = _batch_targets(batch_action, filter, clean)
    count = targets.count()
    if count == 0:
        raise OperationRejected("The filter selects no targets for this action.", "filter")
    if batch_action == OperationAction.MODIFY:
        _check_batch_modify(targets, clean)
    if batch_action == OperationAction.MIGRATE:
        _check_migrate_filter(filter)
    with transaction.atomic():
        batch = BatchOperation.objects.create(
            action=batch_action,
            filter=dict(filter),
            parameters=clean,
            actor=actor,
            actor_name=_actor_name(actor),
            dry_run_count=count,
            rate_per_second=rate,
        )
        AuditEntry.objects.create(
            actor=actor,
            actor_name=batch.actor_name,
            event="batch_started",
            batch=batch,
            message=f"{batch_action.label} on {count} targets",
            detail={"filter": batch.filter, "parameters": clean, "rate_per_second": rate},
        )
        _enqueue_planner_on_commit(batch.id)
    return batch


@dataclass
class PlanStep:
    planned: int = 0
    done: bool = True
    rate_per_second: float | None = None


def batch_plan_step(*, batch_id: int, page_size: int = PLAN_PAGE) -> PlanStep:
    """Turn the next page of targets (in key order after the cursor) into operations; the cursor
    moves in the same transaction, so a planner killed half-way resumes without doubles."""
    with transaction.atomic():
        batch = BatchOperation.objects.select_for_update().filter(id=batch_id).first()
        if batch is None or batch.state not in BATCH_OPEN_STATES or batch.planning_done:
            return PlanStep()
        if batch.rate_per_second:
            page_size = max(1, min(page_size, int(batch.rate_per_second * 2)))
        action = OperationAction(batch.action)
        try:
            targets = _batch_targets(action, batch.filter, batch.parameters)
        except OperationRejected as error:
            # The filter stopped being valid (a cluster removed): stop selecting, keep what exists.
            logger.warning("batch %s: filter no longer valid: %s", batch.id, error.message)
            targets = Incident.objects.none()
        if batch.planned_through_key is not None:
            targets = targets.filter(key__gt=batch.planned_through_key)
        if action in (OperationAction.RETRY, OperationAction.RESOLVE_INCIDENT):
            rows = list(
                targets.order_by("key").values_list("key", "process_instance_id", "job_id")[:page_size]
            )
        else:
            rows = [
                (key, key, None) for key in targets.order_by("key").values_list("key", flat=True)[:page_size]
            ]
        moves = _batch_moves(batch, [row[0] for row in rows]) if action == OperationAction.MODIFY else {}
        if action == OperationAction.MIGRATE:
            operations = _batch_migrations(batch, [row[0] for row in rows])
        else:
            operations = [_batch_operation(batch, action, *row, move=moves.get(row[0])) for row in rows]
        created = Operation.objects.bulk_create(operations, batch_size=1000)
        refused = [op for op in created if op.state == OperationState.FAILED]
        if refused:
            AuditEntry.objects.bulk_create(
                [
                    AuditEntry(
                        event="failed",
                        operation_id=op.id,
                        batch_id=batch.id,
                        message=op.error[:2000],
                        detail={"refused_before_sending": True},
                    )
                    for op in refused
                ]
            )
            created = [op for op in created if op.state != OperationState.FAILED]
        batch.total += len(created) + len(refused)
        if rows:
            batch.planned_through_key = rows[-1][0]
        batch.planning_done = len(rows) < page_size
        batch.planned_at = timezone.now()
        if batch.state == BatchState.PLANNING:
            batch.state = BatchState.RUNNING
        batch.save(update_fields=["total", "planned_through_key", "planning_done", "planned_at", "state"])
        enqueue_operations_on_commit([op.id for op in created])
        if batch.planning_done and not created:
            transaction.on_commit(lambda: batch_finish_if_done(batch_id=batch_id))
        return PlanStep(planned=len(created), done=batch.planning_done, rate_per_second=batch.rate_per_second)


REFUSED_BEFORE_SENDING = "REFUSED_BEFORE_SENDING"


def _batch_migrations(batch: BatchOperation, instance_keys: list[int]) -> list[Operation]:
    """One migrate operation per instance of a planning page, checked as the dry run checks it:
    an instance the engine would refuse gets a failed operation with Zeebe's reason (nothing is
    sent for it), so the batch's progress shows every selected instance."""
    instances = list(ProcessInstance.objects.filter(key__in=instance_keys).defer("tree_path").order_by("key"))
    checks = _batch_migrate_checks(instances, batch.parameters, _DiagramCache())
    now = timezone.now()
    operations = []
    for instance in instances:
        result = checks[instance.key]
        operation = Operation(
            action=OperationAction.MIGRATE,
            actor_id=batch.actor_id,
            actor_name=batch.actor_name,
            batch=batch,
            cluster_id=cluster_of(instance.key),
            target_key=instance.key,
            process_instance_key=instance.key,
            confirm_kind=ConfirmKind.MIGRATED,
            confirm_key=instance.key,
        )
        reason = result if isinstance(result, str) else result.check.refusal
        if reason is not None:
            operation.state = OperationState.FAILED
            operation.error = reason
            operation.error_code = REFUSED_BEFORE_SENDING
            operation.finished_at = now
            operation.parameters = {"target_version": batch.parameters["target_version"]}
        else:
            assert not isinstance(result, str)
            operation.parameters = _migrate_parameters(result)
        operations.append(operation)
    return operations


def _batch_moves(batch: BatchOperation, instance_keys: list[int]) -> dict[int, dict[str, Any]]:
    """Per instance of a batch-modify page: the source tokens to cancel and the key floor (one
    query for the page)."""
    source = batch.parameters["source_element_id"]
    moves: dict[int, dict[str, Any]] = {key: {"terminate": [], "key_floor": key} for key in instance_keys}
    for instance_key, key, element_id, state in ElementInstance.objects.filter(
        process_instance_id__in=instance_keys
    ).values_list("process_instance_id", "key", "element_id", "state"):
        move = moves[instance_key]
        move["key_floor"] = max(move["key_floor"], key)
        if element_id == source and state in INSTANCE_ACTIVE_STATES:
            move["terminate"].append(key)
    return moves


def _batch_operation(
    batch: BatchOperation,
    action: OperationAction,
    key: int,
    instance_key: int | None,
    job_key: int | None,
    *,
    move: dict[str, Any] | None = None,
) -> Operation:
    parameters: dict[str, Any]
    if action == OperationAction.MODIFY:
        assert move is not None
        target = batch.parameters["target_element_id"]
        parameters = {
            "activate": [{"element_id": target, "ancestor_key": None, "variables": {}}],
            "terminate": sorted(move["terminate"]),
            "key_floor": move["key_floor"],
            "plan": [f"Move the token(s) at '{batch.parameters['source_element_id']}' to '{target}'."],
        }
        confirm_kind, confirm_key = ConfirmKind.MODIFIED, key
    elif action == OperationAction.RETRY:
        parameters = {"retries": batch.parameters.get("retries", 1), "job_key": job_key}
        confirm_kind, confirm_key = ConfirmKind.INCIDENT_RESOLVED, key
    elif action == OperationAction.RESOLVE_INCIDENT:
        parameters, confirm_kind, confirm_key = {}, ConfirmKind.INCIDENT_RESOLVED, key
    elif action == OperationAction.CANCEL:
        parameters, confirm_kind, confirm_key = {}, ConfirmKind.INSTANCE_TERMINATED, key
    else:
        parameters = {
            "variables": batch.parameters["variables"],
            "local": batch.parameters.get("local", False),
        }
        confirm_kind, confirm_key = ConfirmKind.VARIABLES, key
    return Operation(
        action=action,
        actor_id=batch.actor_id,
        actor_name=batch.actor_name,
        batch=batch,
        cluster_id=cluster_of(key),
        target_key=key,
        process_instance_key=instance_key,
        parameters=parameters,
        confirm_kind=confirm_kind,
        confirm_key=confirm_key,
    )


def batch_finish_if_done(*, batch_id: int) -> bool:
    """Mark a fully planned batch completed once none of its operations is still open."""
    open_operations = Operation.objects.filter(batch_id=OuterRef("pk"), state__in=OPERATION_OPEN_STATES)
    finished = (
        BatchOperation.objects.filter(id=batch_id, state=BatchState.RUNNING, planning_done=True)
        .exclude(Exists(open_operations))
        .update(state=BatchState.COMPLETED, finished_at=timezone.now())
    )
    if finished:
        AuditEntry.objects.create(
            event="batch_completed", batch_id=batch_id, message="all operations finished"
        )
    return bool(finished)


def batch_operation_cancel(*, actor: Any, batch: BatchOperation) -> BatchOperation:
    """Stop a batch: no new operations are planned, queued and waiting ones are cancelled;
    operations already running finish (a call in flight cannot be taken back)."""
    require_role(actor, at_least=Role.OPERATOR)
    now = timezone.now()
    with transaction.atomic():
        locked = BatchOperation.objects.select_for_update().get(id=batch.id)
        if locked.state not in BATCH_OPEN_STATES:
            raise OperationRejected(
                f"Batch {locked.id} is already {locked.get_state_display().lower()}.", "batch"
            )
        cancelled = Operation.objects.filter(
            batch=locked, state__in=[OperationState.QUEUED, OperationState.WAITING]
        ).update(state=OperationState.CANCELLED, finished_at=now)
        locked.state = BatchState.CANCELLED
        locked.cancelled_at = now
        locked.finished_at = now
        locked.cancelled_by = _actor_name(actor)
        locked.save(update_fields=["state", "cancelled_at", "finished_at", "cancelled_by"])
        AuditEntry.objects.create(
            actor=actor,
            actor_name=locked.cancelled_by,
            event="batch_cancelled",
            batch=locked,
            message=f"{cancelled} operations cancelled before they ran",
            detail={"cancelled_operations": cancelled},
        )
    return locked
