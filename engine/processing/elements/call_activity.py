"""Call activities: create an instance of the called process and wait for it
(reference §5.2 "Call activity": variable propagation both ways)."""

from __future__ import annotations

from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate_string
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import (
    BaseBehavior,
    queue_activate,
    queue_complete,
    terminate_element,
)
from engine.processing.variables import apply_input_mappings, set_local_variables


@behavior("CALL_ACTIVITY")
class CallActivityBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        variables = ctx.state.visible_variables(instance.key)
        process_id = evaluate_string(element.called_process_id, variables, "CALLED_ELEMENT_ERROR")
        process = ctx.state.latest_process(process_id)
        if process is None:
            raise MappingFailure(
                "CALLED_ELEMENT_ERROR",
                f"Expected process with BPMN process id '{process_id}' to be deployed, but not found.",
            )
        model = ctx.state.model(process.key)
        if model.none_start_event is None:
            raise MappingFailure(
                "CALLED_ELEMENT_ERROR",
                f"Expected process with BPMN process id '{process_id}' to have a none start event, but not found.",
            )
        open_subscriptions(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        child_key = ctx.state.new_key()
        child_proc = ProcessInfo(
            bpmn_process_id=process.bpmn_process_id,
            version=process.version,
            process_definition_key=process.key,
            process_instance_key=child_key,
            parent_process_instance_key=instance.process_instance_key,
            parent_element_instance_key=instance.key,
        )
        if element.propagate_all_parent_variables:
            document = variables
        else:
            document = ctx.state.local_variables(instance.key)
        set_local_variables(ctx, child_key, document, child_proc)
        # Zeebe's createChildProcessInstance: ACTIVATE_ELEMENT of the child process, its key
        queue_activate(ctx, model.process, -1, child_proc, key=child_key)

    def on_child_completed(
        self, ctx: ProcessingContext, scope: ElementInstance, element: Any, child: ElementInstance | None
    ) -> None:
        """The called process completed: take its variables as the element says."""
        if child is None:
            return
        if element.outputs or element.propagate_all_child_variables:
            document = ctx.state.local_variables(child.key)
        else:
            document = {}
        queue_complete(ctx, scope.key, document)

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
        super().complete(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if instance.child_instance_key > 0:
            terminate_element(ctx, instance.child_instance_key)
        close_subscriptions(ctx, instance, element)
