"""VARIABLE_DOCUMENT UPDATE (SetVariables): local or propagated."""

from __future__ import annotations

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.registry import processor
from engine.processing.state import ProcessInfo
from engine.processing.variables import merge_variables, set_local_variables
from engine.records import NOT_FOUND, variable_document_value


@processor("VARIABLE_DOCUMENT", "UPDATE")
def update_variables(ctx: ProcessingContext, command: Command) -> int:
    element_instance_key = command.value["scopeKey"]
    variables = command.value["variables"]
    local = command.value["updateSemantics"] == "LOCAL"
    instance = ctx.state.element_instances.get(element_instance_key)
    if instance is None:
        raise Rejection(
            "UPDATE",
            NOT_FOUND,
            f"Expected to update variables for element with key '{element_instance_key}', but no such element "
            f"was found",
        )
    proc = ProcessInfo.of(instance)
    if local:
        set_local_variables(ctx, element_instance_key, variables, proc)
    else:
        merge_variables(ctx, element_instance_key, variables, proc)
    key = ctx.state.new_key()
    ctx.emit(
        "VARIABLE_DOCUMENT",
        "UPDATED",
        key,
        variable_document_value(scope_key=element_instance_key, local=local, variables=variables),
    )
    return key
