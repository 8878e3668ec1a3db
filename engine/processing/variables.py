"""Variables behaviour: set local, propagate (merge) and zeebe:input/output mappings
(reference §5.2 "Variables")."""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.state import ElementInstance, ProcessInfo
from engine.records import variable_value
from engine.values import json_text, put_path


def set_variable(ctx: ProcessingContext, scope_key: int, name: str, value: Any, proc: ProcessInfo) -> None:
    existing = ctx.state.variables.get(scope_key, {}).get(name)
    text = json_text(value)
    if existing is not None:
        if existing.value == value and json_text(existing.value) == text:
            return  # Zeebe writes nothing for an unchanged value
        intent, key = "UPDATED", existing.key
    else:
        intent, key = "CREATED", ctx.state.new_key()
    ctx.emit(
        "VARIABLE",
        intent,
        key,
        variable_value(
            name=name,
            value_json=text,
            scope_key=scope_key,
            process_instance_key=proc.process_instance_key,
            process_definition_key=proc.process_definition_key,
            bpmn_process_id=proc.bpmn_process_id,
        ),
    )


def set_local_variables(
    ctx: ProcessingContext, scope_key: int, document: dict[str, Any], proc: ProcessInfo
) -> None:
    for name, value in document.items():
        set_variable(ctx, scope_key, name, value, proc)


def merge_variables(
    ctx: ProcessingContext, start_scope_key: int, document: dict[str, Any], proc: ProcessInfo
) -> None:
    """Propagate: each variable goes to the first scope upward that has it, else the root."""
    chain = ctx.state.scope_chain(start_scope_key)
    if not chain:
        return
    root = chain[-1]
    for name, value in document.items():
        target = root
        for scope in chain:
            if name in ctx.state.variables.get(scope, {}):
                target = scope
                break
        set_variable(ctx, target, name, value, proc)


def evaluate_mappings(mappings: list[Any], variables: dict[str, Any]) -> dict[str, Any]:
    """Evaluate zeebe:input/output mappings in order; later sources see earlier targets."""
    result: dict[str, Any] = {}
    for mapping in mappings:
        context = dict(variables)
        context.update(result)
        value = evaluate(mapping.source, context, "IO_MAPPING_ERROR")
        put_path(result, mapping.target, value, variables)
    return result


def apply_input_mappings(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    if not element.inputs:
        return
    # Seen from the instance itself: its own local variables exist before its input mappings
    # only inside a multi-instance body (loopCounter, the input element), which they may read.
    variables = ctx.state.visible_variables(instance.key)
    document = evaluate_mappings(element.inputs, variables)
    set_local_variables(ctx, instance.key, document, ProcessInfo.of(instance))


def apply_output_mappings(
    ctx: ProcessingContext, instance: ElementInstance, element: Any, variables: dict[str, Any] | None
) -> None:
    """On completion: with output mappings the given variables become local and only the
    mapped targets propagate; without, the given variables propagate (reference §5.2)."""
    proc = ProcessInfo.of(instance)
    if element.outputs:
        if variables:
            set_local_variables(ctx, instance.key, variables, proc)
        visible = ctx.state.visible_variables(instance.key)
        document = evaluate_mappings(element.outputs, visible)
        merge_variables(ctx, instance.flow_scope_key, document, proc)
    elif variables:
        merge_variables(ctx, instance.key, variables, proc)
