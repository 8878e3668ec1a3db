"""PROCESS_INSTANCE CANCEL: terminate a root process instance and everything in it."""

from __future__ import annotations

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.registry import processor
from engine.processing.state import ElementInstance
from engine.processing.transitions import terminate_element
from engine.records import INVALID_STATE, NOT_FOUND


@processor("PROCESS_INSTANCE", "CANCEL")
def cancel(ctx: ProcessingContext, command: Command) -> None:
    process_instance_key = command.key
    instance = ctx.state.element_instances.get(process_instance_key)
    if instance is None or instance.element_type != "PROCESS":
        raise Rejection(
            "CANCEL",
            NOT_FOUND,
            f"Expected to cancel a process instance with key '{process_instance_key}', but no such process was found",
        )
    if instance.parent_process_instance_key > 0:
        raise Rejection(
            "CANCEL",
            INVALID_STATE,
            f"Expected to cancel a process instance with key '{process_instance_key}', but it is created by a "
            f"parent process instance. Cancel the root process instance "
            f"'{root_instance_key(ctx, instance)}' instead.",
        )
    terminate_element(ctx, process_instance_key)


def root_instance_key(ctx: ProcessingContext, instance: ElementInstance) -> int:
    while instance.parent_process_instance_key > 0:
        parent = ctx.state.element_instances.get(instance.parent_process_instance_key)
        if parent is None:
            return instance.parent_process_instance_key
        instance = parent
    return instance.process_instance_key
