"""Starting a process instance: shared by instance creation (CreateProcessInstance) and by
the trigger sources that start instances themselves (timer, message and signal start events)."""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.state import DeployedProcess, ProcessInfo
from engine.processing.transitions import activate_element, ensure_flow_scope, queue_activate
from engine.processing.variables import set_local_variables
from engine.records import process_instance_creation_value


def start_process_instance(
    ctx: ProcessingContext,
    process: DeployedProcess,
    model: Any,
    key: int,
    variables: dict[str, Any],
    start_elements: list[Any],
    start_event: Any = None,
    write_creation: bool = True,
) -> None:
    """Write the creation of instance `key` and queue its activation: at the none start event,
    at `start_event` (a timer or message start event), or at the start instructions.
    PROCESS_INSTANCE_CREATION CREATED is written for CreateProcessInstance only
    (`write_creation`); an instance started by an event has no creation record in Zeebe."""
    proc = ProcessInfo(process.bpmn_process_id, process.version, process.key, key)
    set_local_variables(ctx, key, variables, proc)
    value = process_instance_creation_value(
        bpmn_process_id=process.bpmn_process_id,
        process_definition_key=process.key,
        version=process.version,
        process_instance_key=key,
        variables=variables,
        start_instructions=[{"elementId": element.id} for element in start_elements],
    )
    if start_elements or start_event is not None:
        ctx.scopes_without_start.add(key)

        def start_with_instructions() -> None:
            activate_element(ctx, model.process, -1, proc, key=key)
            ctx.scopes_without_start.discard(key)
            if start_event is not None:
                activate_element(ctx, start_event, key, proc)
            for element in start_elements:
                scope_key = ensure_flow_scope(ctx, element, key, -1)
                if scope_key is not None:
                    activate_element(ctx, element, scope_key, proc)

        queue_activate(ctx, model.process, -1, proc, key=key, work=start_with_instructions)
    else:
        queue_activate(ctx, model.process, -1, proc, key=key)
    if write_creation:
        ctx.emit("PROCESS_INSTANCE_CREATION", "CREATED", key, value)
