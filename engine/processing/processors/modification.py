"""PROCESS_INSTANCE_MODIFICATION MODIFY: activate and terminate elements of a running
instance (Zeebe's ProcessInstanceModificationProcessor, its validations and texts)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from engine import records
from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.registry import processor
from engine.processing.state import ProcessInfo
from engine.processing.transitions import (
    activate_element,
    active_instances_of,
    ensure_flow_scope,
    terminate_element,
)
from engine.processing.variables import set_local_variables
from engine.records import INVALID_ARGUMENT, NOT_FOUND

UNSUPPORTED_MODIFICATION_TYPES = {"UNSPECIFIED", "START_EVENT", "SEQUENCE_FLOW", "BOUNDARY_EVENT"}


@dataclass(slots=True)
class ModifyInstance:
    """Activate instructions as dicts: elementId, ancestorElementInstanceKey (-1 for none),
    variableInstructions [{variables, scopeId}]; terminate instructions as element instance keys."""

    activate_instructions: list[dict[str, Any]] = field(default_factory=list)
    terminate_instructions: list[int] = field(default_factory=list)


@processor("PROCESS_INSTANCE_MODIFICATION", "MODIFY")
def modify(ctx: ProcessingContext, command: Command) -> None:
    request: ModifyInstance = command.request
    _modify(ctx, command.key, request.activate_instructions, request.terminate_instructions)


def _modify(
    ctx: ProcessingContext,
    process_instance_key: int,
    activate_instructions: list[dict[str, Any]],
    terminate_instructions: list[int],
) -> None:
    intent = "MODIFY"
    instance = ctx.state.element_instances.get(process_instance_key)
    if instance is None or instance.element_type != "PROCESS":
        raise Rejection(
            intent,
            NOT_FOUND,
            f"Expected to modify process instance but no process instance found with key '{process_instance_key}'",
        )
    model = ctx.state.model(instance.process_definition_key)
    process_id = instance.bpmn_process_id
    prefix = f"Expected to modify instance of process '{process_id}' but it contains one or more"
    unknown = [i["elementId"] for i in activate_instructions if i["elementId"] not in model.elements_by_id]
    if unknown:
        raise Rejection(
            intent,
            INVALID_ARGUMENT,
            f"{prefix} activate instructions with an element that could not be found: '{_join(unknown)}'",
        )
    unsupported = [
        i["elementId"]
        for i in activate_instructions
        if model.elements_by_id[i["elementId"]].element_type.value in UNSUPPORTED_MODIFICATION_TYPES
        or model.elements_by_id[i["elementId"]].element_type.value == "PROCESS"
    ]
    if unsupported:
        types = sorted({model.elements_by_id[e].element_type.value for e in unsupported})
        raise Rejection(
            intent,
            INVALID_ARGUMENT,
            f"{prefix} activate instructions for elements that are unsupported: '{_join(unsupported)}'. "
            f"The activation of elements with type '{_join(types)}' is not supported.",
        )
    missing = [
        str(key)
        for key in terminate_instructions
        if (target := ctx.state.element_instances.get(key)) is None
        or target.process_instance_key != process_instance_key
        or target.element_type == "PROCESS"
    ]
    if missing:
        raise Rejection(
            intent,
            INVALID_ARGUMENT,
            f"{prefix} terminate instructions with an element instance that could not be found: "
            f"'{_join(missing)}'",
        )
    for instruction in activate_instructions:
        element = model.elements_by_id[instruction["elementId"]]
        scope_ids = _flow_scope_ids(element)
        for variable_instruction in instruction["variableInstructions"]:
            scope_id = variable_instruction["scopeId"]
            if scope_id and scope_id not in model.elements_by_id:
                raise Rejection(
                    intent,
                    INVALID_ARGUMENT,
                    f"{prefix} variable instructions with a scope element id that could not be found: '{scope_id}'",
                )
            if scope_id and scope_id != element.id and scope_id not in scope_ids:
                raise Rejection(
                    intent,
                    INVALID_ARGUMENT,
                    f"{prefix} variable instructions with a scope element that doesn't belong to the activating "
                    f"element's flow scope. These variables should be set before or after the modification.",
                )
        ancestor_key = instruction["ancestorElementInstanceKey"]
        if ancestor_key > 0:
            ancestor = ctx.state.element_instances.get(ancestor_key)
            if ancestor is None or not ancestor.is_active:
                raise Rejection(
                    intent,
                    INVALID_ARGUMENT,
                    f"{prefix} activate instructions with an ancestor scope key that does not exist, or is not in "
                    f"an active state: '{ancestor_key}'",
                )
            if ancestor.process_instance_key != process_instance_key:
                raise Rejection(
                    intent,
                    INVALID_ARGUMENT,
                    f"Expected to modify instance of process '{process_id}' but it contains one or more activate "
                    f"instructions with an ancestor scope key that does not belong to the modified process "
                    f"instance: '{ancestor_key}'",
                )
            if ancestor.element_id not in scope_ids:
                raise Rejection(
                    intent,
                    INVALID_ARGUMENT,
                    f"{prefix} activate instructions with an ancestor scope key that is not an ancestor of the "
                    f"element to activate:\n- instance '{ancestor_key}' of element '{ancestor.element_id}' is "
                    f"not an ancestor of element '{element.id}'",
                )
        else:
            ambiguous = _ambiguous_flow_scope(ctx, element, process_instance_key)
            if ambiguous is not None:
                raise Rejection(
                    intent,
                    INVALID_ARGUMENT,
                    f"{prefix} activate instructions for an element that has a flow scope with more than one "
                    f"active instance: '{ambiguous}'. Can't decide in which instance of the flow scope the element "
                    f"should be activated. Please specify an ancestor element instance key for this activate "
                    f"instruction.",
                )
    conflicts = _activations_into_terminated_scopes(
        ctx, activate_instructions, terminate_instructions, process_instance_key
    )
    if conflicts:
        raise Rejection(
            intent,
            INVALID_ARGUMENT,
            f"{prefix} activate instructions for elements whose required flow scope instance is also being "
            f"terminated: {', '.join(conflicts)}. Please provide a valid ancestor scope key for the activation "
            f"or avoid terminating the required flow scope.",
        )
    if (
        instance.parent_process_instance_key > 0
        and not activate_instructions
        and _would_leave_empty(ctx, process_instance_key, set(terminate_instructions))
    ):
        # Zeebe refuses: the calling parent would wait forever for this instance.
        raise Rejection(
            intent,
            INVALID_ARGUMENT,
            f"Expected to modify instance of process '{process_id}' but the given instructions would terminate "
            f"the instance. The instance was created by a call activity in the parent process. To terminate "
            f"this instance please modify the parent process instead.",
        )
    # --- all valid: execute. Activations first decide which scopes must survive.
    proc = ProcessInfo.of(instance)
    required_scopes: set[int] = set()
    activations = []
    for instruction in activate_instructions:
        element = model.elements_by_id[instruction["elementId"]]
        scope_key = ensure_flow_scope(
            ctx, element, process_instance_key, instruction["ancestorElementInstanceKey"]
        )
        if scope_key is None:
            continue
        required_scopes.update(ctx.state.scope_chain(scope_key))
        element_key = ctx.state.new_key()
        for variable_instruction in instruction["variableInstructions"]:
            scope_id = variable_instruction["scopeId"]
            if not scope_id or scope_id == model.process.id:
                target_scope = process_instance_key
            elif scope_id == element.id:
                target_scope = element_key
            else:
                target_scope = next(
                    (
                        k
                        for k in ctx.state.scope_chain(scope_key)
                        if ctx.state.element_instances[k].element_id == scope_id
                    ),
                    scope_key,
                )
            set_local_variables(ctx, target_scope, variable_instruction["variables"], proc)
        activations.append((element, scope_key, element_key))
        instruction["ancestorScopeKeys"] = list(ctx.state.scope_chain(scope_key))
    for key in terminate_instructions:
        target = ctx.state.element_instances.get(key)
        if target is None:
            continue
        flow_scope_key = target.flow_scope_key
        terminate_element(ctx, key)
        terminate_flow_scopes(ctx, flow_scope_key, required_scopes)
    ctx.emit(
        "PROCESS_INSTANCE_MODIFICATION",
        "MODIFIED",
        process_instance_key,
        {
            "processInstanceKey": process_instance_key,
            "terminateInstructions": [{"elementInstanceKey": key} for key in terminate_instructions],
            "activateInstructions": [
                {
                    "elementId": i["elementId"],
                    "ancestorScopeKey": i["ancestorElementInstanceKey"],
                    "variableInstructions": [
                        {"variables": v["variables"], "elementId": v["scopeId"]}
                        for v in i["variableInstructions"]
                    ],
                    "ancestorScopeKeys": i.get("ancestorScopeKeys", []),
                }
                for i in activate_instructions
            ],
            "tenantId": records.DEFAULT_TENANT,
        },
    )
    for element, scope_key, element_key in activations:
        ctx.queue.append(functools.partial(activate_element, ctx, element, scope_key, proc, key=element_key))


def _activations_into_terminated_scopes(
    ctx: ProcessingContext,
    activate_instructions: list[dict[str, Any]],
    terminate_instructions: list[int],
    process_instance_key: int,
) -> list[str]:
    """Activations whose existing flow-scope instance a terminate instruction would end."""
    terminated = set(terminate_instructions)
    if not terminated:
        return []
    model = ctx.state.model(ctx.state.element_instances[process_instance_key].process_definition_key)
    conflicts = []
    for instruction in activate_instructions:
        element = model.elements_by_id[instruction["elementId"]]
        scope = element.flow_scope
        if scope is None or scope.element_type.value == "PROCESS":
            scope_key = process_instance_key
        elif instruction["ancestorElementInstanceKey"] > 0:
            scope_key = instruction["ancestorElementInstanceKey"]
        else:
            active = active_instances_of(ctx, scope.id, process_instance_key)
            if not active:
                continue  # a new scope instance will be created
            scope_key = active[0]
        for key in ctx.state.scope_chain(scope_key):
            if key in terminated:
                conflicts.append(
                    f"element '{element.id}' requires flow scope instance '{key}' which is being terminated"
                )
                break
    return conflicts


def _would_leave_empty(ctx: ProcessingContext, scope_key: int, terminated: set[int]) -> bool:
    """True if terminating `terminated` leaves the scope without any active element."""

    def survives(key: int) -> bool:
        if key in terminated:
            return False
        children = ctx.state.children.get(key)
        return not children or any(survives(child) for child in children)

    scope = ctx.state.element_instances[scope_key]
    return not scope.taken and not any(survives(child) for child in ctx.state.children.get(scope_key, {}))


def _ambiguous_flow_scope(ctx: ProcessingContext, element: Any, process_instance_key: int) -> str | None:
    scope = element.flow_scope
    while scope is not None and scope.element_type.value != "PROCESS":
        active = active_instances_of(ctx, scope.id, process_instance_key)
        if len(active) > 1:
            return str(scope.id)
        if len(active) == 1:
            return None
        scope = scope.flow_scope
    return None


def terminate_flow_scopes(ctx: ProcessingContext, scope_key: int, required: set[int]) -> None:
    """After a terminate instruction: a scope left without active children ends too."""
    while scope_key > 0 and scope_key not in required:
        scope = ctx.state.element_instances.get(scope_key)
        if scope is None or ctx.state.children.get(scope_key) or scope.taken:
            return
        parent_key = scope.flow_scope_key
        terminate_element(ctx, scope_key)
        scope_key = parent_key


def _flow_scope_ids(element: Any) -> set[str]:
    ids = set()
    scope = element.flow_scope
    while scope is not None:
        ids.add(scope.id)
        scope = scope.flow_scope
    return ids


def _join(items: list[str]) -> str:
    return "', '".join(items)
