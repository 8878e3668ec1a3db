"""PROCESS_INSTANCE_MIGRATION MIGRATE: move a running process instance to another process
definition (Zeebe 8.5's ProcessInstanceMigrationMigrateProcessor and its precondition checks,
their order, rejection types and texts).

Zeebe 8.5 migrates the process and its active service and user tasks; any other active element
(a subprocess, a call activity, a multi-instance body, an event...) refuses the whole migration,
as do a child instance, an event subprocess in either process, an unmapped active element, an
incident on it, a type or flow scope change, a boundary event on the active element or its target,
and a command in flight on the instance (a token on a sequence flow). Checks run before anything is
written, so a refused migration changes nothing. Accepted, each element instance from the process
down gets ELEMENT_MIGRATED (new definition key, process id, version, element id), its job JOB
MIGRATED (the job keeps its key and type), then PROCESS_INSTANCE_MIGRATION MIGRATED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.registry import processor
from engine.processing.state import ElementInstance, PartitionState, register_applier
from engine.records import INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND

INTENT = "MIGRATE"
SUPPORTED_ELEMENT_TYPES = frozenset({"PROCESS", "SERVICE_TASK", "USER_TASK"})


@dataclass(slots=True)
class MigrateInstance:
    """The migration plan: target definition key and (source element id, target element id) pairs."""

    target_process_definition_key: int
    mapping_instructions: list[tuple[str, str]] = field(default_factory=list)


def _refuse(rejection_type: str, reason: str) -> Rejection:
    return Rejection(INTENT, rejection_type, reason)


@processor("PROCESS_INSTANCE_MIGRATION", "MIGRATE")
def migrate(ctx: ProcessingContext, command: Command) -> None:
    request: MigrateInstance = command.request
    key = command.key
    state = ctx.state
    process_instance = state.element_instances.get(key)
    if process_instance is None or process_instance.element_type != "PROCESS":
        raise _refuse(
            NOT_FOUND, f"Expected to migrate process instance but no process instance found with key '{key}'"
        )
    if process_instance.parent_process_instance_key > 0:
        raise _refuse(
            INVALID_STATE,
            f"Expected to migrate process instance '{key}' but process instance is a child process instance. "
            "Child process instances cannot be migrated.",
        )
    target_key = request.target_process_definition_key
    target_process = state.processes.get(target_key)
    if target_process is None:
        raise _refuse(
            NOT_FOUND,
            "Expected to migrate process instance to process definition but no process definition found with "
            f"key '{target_key}'",
        )
    mapping = request.mapping_instructions
    counts: dict[str, int] = {}
    for source_id, _ in mapping:
        counts[source_id] = counts.get(source_id, 0) + 1
    duplicates = [source_id for source_id, count in counts.items() if count > 1]
    if duplicates:
        raise _refuse(
            INVALID_ARGUMENT,
            f"Expected to migrate process instance '{key}' but the mapping instructions contain duplicate source "
            f"element ids '[{', '.join(duplicates)}]'.",
        )
    source_model = state.model(process_instance.process_definition_key)
    target_model = state.model(target_key)
    for source_id, target_id in mapping:
        if source_id not in source_model.elements_by_id:
            raise _refuse(
                INVALID_ARGUMENT,
                f"Expected to migrate process instance '{key}' but mapping instructions contain a non-existing "
                f"source element id '{source_id}'. Elements provided in mapping instructions must exist in the "
                "source process definition.",
            )
        if target_id not in target_model.elements_by_id:
            raise _refuse(
                INVALID_ARGUMENT,
                f"Expected to migrate process instance '{key}' but mapping instructions contain a non-existing "
                f"target element id '{target_id}'. Elements provided in mapping instructions must exist in the "
                "target process definition.",
            )
    if _has_event_subprocess(source_model):
        raise _refuse(
            INVALID_STATE,
            "Expected to migrate process instance but process instance has an event subprocess. "
            "Process instances with event subprocesses cannot be migrated yet.",
        )
    if _has_event_subprocess(target_model):
        raise _refuse(
            INVALID_STATE,
            "Expected to migrate process instance but target process has an event subprocess. "
            "Target processes with event subprocesses cannot be migrated yet.",
        )
    # Users give no mapping for the process itself: it maps to the target process.
    targets = dict(mapping)
    targets[process_instance.element_id] = target_process.bpmn_process_id
    order = _breadth_first(state, process_instance)
    # Check every instance before writing anything (a refusal must leave no trace); the target
    # flow scope of a child is its scope's target element, as the engine compares it after the
    # scope was migrated.
    for instance in order:
        _check_element(ctx, key, instance, targets, source_model, target_model)
    for instance in order:
        target_id = targets[instance.element_id]
        ctx.emit(
            "PROCESS_INSTANCE",
            "ELEMENT_MIGRATED",
            instance.key,
            {
                **instance.record_value(),
                "bpmnProcessId": target_process.bpmn_process_id,
                "version": target_process.version,
                "processDefinitionKey": target_key,
                "elementId": target_id,
            },
        )
        job = state.jobs.get(instance.job_key) if instance.job_key > 0 else None
        if job is not None:
            ctx.emit(
                "JOB",
                "MIGRATED",
                job.key,
                {
                    **job.value,
                    "processDefinitionKey": target_key,
                    "processDefinitionVersion": target_process.version,
                    "bpmnProcessId": target_process.bpmn_process_id,
                    "elementId": target_id,
                },
            )
    ctx.emit("PROCESS_INSTANCE_MIGRATION", "MIGRATED", key, dict(command.value))


def _has_event_subprocess(model: Any) -> bool:
    # The process's own event subprocesses, as Zeebe 8.5 looks at them (getEventSubprocesses()).
    return bool(model.process.event_sub_processes)


def _breadth_first(state: PartitionState, root: ElementInstance) -> list[ElementInstance]:
    order = [root]
    index = 0
    while index < len(order):
        scope = order[index]
        index += 1
        for child_key in state.children.get(scope.key, {}):
            child = state.element_instances.get(child_key)
            if child is not None:
                order.append(child)
    return order


def _check_element(
    ctx: ProcessingContext,
    key: int,
    instance: ElementInstance,
    targets: dict[str, str],
    source_model: Any,
    target_model: Any,
) -> None:
    state = ctx.state
    element_id, element_type = instance.element_id, instance.element_type
    if element_type not in SUPPORTED_ELEMENT_TYPES:
        raise _refuse(
            INVALID_STATE,
            f"Expected to migrate process instance '{key}' but active element with id '{element_id}' has an "
            f"unsupported type. The migration of a {element_type} is not supported.",
        )
    target_id = targets.get(element_id)
    if target_id is None:
        raise _refuse(
            INVALID_STATE,
            f"Expected to migrate process instance '{key}' but no mapping instruction defined for active element "
            f"with id '{element_id}'. Elements cannot be migrated without a mapping.",
        )
    if instance.key in state.element_incidents or (
        instance.job_key > 0 and instance.job_key in state.job_incidents
    ):
        raise _refuse(
            INVALID_STATE,
            f"Expected to migrate process instance '{key}' but active element with id '{element_id}' has an "
            "incident. Elements cannot be migrated with an incident yet. Please retry migration after resolving "
            "the incident.",
        )
    if element_type == "PROCESS":
        target_type = "PROCESS"
    else:
        target_element = target_model.elements_by_id[target_id]
        target_type = str(target_element.element_type.value)
        if target_type != element_type:
            raise _refuse(INVALID_STATE, _type_changed(key, element_id, element_type, target_id, target_type))
        if element_type == "USER_TASK":
            source_kind = "ZEEBE_USER_TASK" if ctx.element_of(instance).zeebe_user_task else "USER_TASK"
            target_kind = "ZEEBE_USER_TASK" if target_element.zeebe_user_task else "USER_TASK"
            if source_kind != target_kind:
                raise _refuse(
                    INVALID_STATE, _type_changed(key, element_id, source_kind, target_id, target_kind)
                )
        scope = state.element_instances.get(instance.flow_scope_key)
        if scope is not None:
            expected = targets.get(scope.element_id, scope.element_id)
            flow_scope = target_element.flow_scope
            actual = flow_scope.id if flow_scope is not None else target_model.bpmn_process_id
            if expected != actual:
                raise _refuse(
                    INVALID_STATE,
                    f"Expected to migrate process instance '{key}' but the flow scope of active element with id "
                    f"'{element_id}' is changed. The flow scope of the active element is expected to be "
                    f"'{expected}' but was '{actual}'. The flow scope of an element cannot be changed during "
                    "migration yet.",
                )
        if source_model.elements_by_id[element_id].boundary_events:
            raise _refuse(
                INVALID_STATE,
                f"Expected to migrate process instance '{key}' but active element with id '{element_id}' has a "
                "boundary event. Migrating active elements with boundary events is not possible yet.",
            )
        if target_element.boundary_events:
            raise _refuse(
                INVALID_STATE,
                f"Expected to migrate process instance '{key}' but target element with id '{element_id}' has a "
                "boundary event. Migrating target elements with boundary events is not possible yet.",
            )
    # A token on its way (a taken sequence flow not yet consumed, e.g. waiting at a join) or a
    # transition in progress is a command racing the migration.
    if any(count > 0 for count in instance.taken.values()) or not instance.is_active:
        raise _refuse(
            INVALID_STATE,
            f"Expected to migrate process instance '{key}' but a concurrent command was executed on the process "
            "instance. Please retry the migration.",
        )


def _type_changed(key: int, element_id: str, element_type: str, target_id: str, target_type: str) -> str:
    return (
        f"Expected to migrate process instance '{key}' but active element with id '{element_id}' and type "
        f"'{element_type}' is mapped to an element with id '{target_id}' and different type '{target_type}'. "
        "Elements must be mapped to elements of the same type."
    )


@register_applier("PROCESS_INSTANCE", "ELEMENT_MIGRATED")
def _element_migrated(state: PartitionState, record: dict[str, Any]) -> None:
    instance = state.element_instances.get(record["key"])
    if instance is None:
        return
    value = record["value"]
    instance.element_id = value["elementId"]
    instance.bpmn_process_id = value["bpmnProcessId"]
    instance.version = value["version"]
    instance.process_definition_key = value["processDefinitionKey"]


@register_applier("JOB", "MIGRATED")
def _job_migrated(state: PartitionState, record: dict[str, Any]) -> None:
    job = state.jobs.get(record["key"])
    if job is None:
        return
    for name in ("processDefinitionKey", "processDefinitionVersion", "bpmnProcessId", "elementId"):
        job.value[name] = record["value"][name]
