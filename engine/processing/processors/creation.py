"""PROCESS_INSTANCE_CREATION CREATE: start an instance at the none start event or at the
given start instructions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.instances import start_process_instance
from engine.processing.registry import processor
from engine.processing.state import DeployedProcess
from engine.records import INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND

UNSUPPORTED_START_INSTRUCTION_TYPES = {"PROCESS", "UNSPECIFIED", "SEQUENCE_FLOW", "BOUNDARY_EVENT"}


@dataclass(slots=True)
class CreateInstance:
    bpmn_process_id: str
    version: int = -1
    process_definition_key: int = -1
    variables: dict[str, Any] = field(default_factory=dict)
    start_instructions: list[str] = field(default_factory=list)
    #: Called with the new instance's key before any of its elements run (a
    #: CreateWithResult waiter must exist before an instance without wait states completes).
    on_created: Callable[[int], None] | None = None


@dataclass(slots=True)
class Created:
    process: DeployedProcess
    process_instance_key: int


def find_process(ctx: ProcessingContext, bpmn_process_id: str, version: int, key: int) -> DeployedProcess:
    intent = "CREATE"
    if key > 0:
        process = ctx.state.processes.get(key)
        if process is None:
            raise Rejection(
                intent, NOT_FOUND, f"Expected to find process definition with key '{key}', but none found"
            )
        return process
    if not bpmn_process_id:
        raise Rejection(
            intent,
            INVALID_ARGUMENT,
            "Expected at least a bpmnProcessId or a key greater than -1, but none given",
        )
    if version < 0:
        found = ctx.state.latest_process(bpmn_process_id)
        if found is None:
            raise Rejection(
                intent,
                NOT_FOUND,
                f"Expected to find process definition with process ID '{bpmn_process_id}', but none found",
            )
        return found
    found = ctx.state.process_by_version(bpmn_process_id, version)
    if found is None:
        raise Rejection(
            intent,
            NOT_FOUND,
            f"Expected to find process definition with process ID '{bpmn_process_id}' and version "
            f"'{version}', but none found",
        )
    return found


@processor("PROCESS_INSTANCE_CREATION", "CREATE")
def create_instance(ctx: ProcessingContext, command: Command) -> Created:
    request: CreateInstance = command.request
    process = find_process(ctx, request.bpmn_process_id, request.version, request.process_definition_key)
    model = ctx.state.model(process.key)
    start_elements = []
    for element_id in request.start_instructions:
        element = model.elements_by_id.get(element_id)
        if element is None:
            raise Rejection(
                "CREATE",
                INVALID_ARGUMENT,
                f"Expected to create instance of process with start instructions but no element found with id "
                f"'{element_id}'.",
            )
        if element.element_type.value in UNSUPPORTED_START_INSTRUCTION_TYPES:
            # Starting "at the process itself" would create a second process scope inside the
            # instance that nothing ever completes (Zeebe refuses it the same way).
            raise Rejection(
                "CREATE",
                INVALID_ARGUMENT,
                f"Expected to create instance of process with start instructions but the element with id "
                f"'{element_id}' targets unsupported element type '{element.element_type.value}'. Supported "
                f"element types are: flow nodes inside the process (tasks, events, gateways, sub-processes).",
            )
        start_elements.append(element)
    if not start_elements and model.none_start_event is None:
        raise Rejection(
            "CREATE",
            INVALID_STATE,
            "Expected to create instance of process with none start event, but there is no such event",
        )
    key = ctx.state.new_key()
    start_process_instance(ctx, process, model, key, request.variables, start_elements)
    if request.on_created is not None:
        request.on_created(key)
    return Created(process, key)
