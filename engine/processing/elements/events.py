"""Events: start, end (none, terminate, error), intermediate throw (none), boundary and
intermediate catch events. What a catch event waits for is a trigger kind
(engine/processing/triggers/), not this module's business."""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import (
    BaseBehavior,
    queue_complete,
    take_completion_variables,
    terminate_children,
)
from engine.processing.triggers.compensation import throw_compensation
from engine.processing.triggers.errors import throw_end_event_error
from engine.processing.triggers.signals import throw_signal
from engine.processing.variables import apply_input_mappings


@behavior("START_EVENT", "BOUNDARY_EVENT")
class StartEventBehavior(BaseBehavior):
    """Passes through, completing with the variables its trigger carried (error, message...)."""

    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        queue_complete(ctx, instance.key, take_completion_variables(ctx, instance.key))


@behavior("INTERMEDIATE_THROW_EVENT")
class ThrowEventBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        if instance.event_type == "SIGNAL":
            throw_signal(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        if instance.event_type == "COMPENSATION" and throw_compensation(ctx, instance, element):
            return  # waits until the compensation handlers it started have completed
        queue_complete(ctx, instance.key, take_completion_variables(ctx, instance.key))


@behavior("INTERMEDIATE_CATCH_EVENT")
class CatchEventBehavior(BaseBehavior):
    """Waits until one of its subscriptions is triggered (`subscriptions.trigger` completes it)."""

    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        open_subscriptions(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
        super().complete(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)


@behavior("END_EVENT")
class EndEventBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if instance.event_type == "ERROR":
            ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
            throw_end_event_error(ctx, instance, element)
            return
        apply_input_mappings(ctx, instance, element)
        if instance.event_type == "SIGNAL":
            throw_signal(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        if instance.event_type == "COMPENSATION" and throw_compensation(ctx, instance, element):
            return  # waits until the compensation handlers it started have completed
        queue_complete(ctx, instance.key, take_completion_variables(ctx, instance.key))

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if instance.event_type != "TERMINATE":
            super().complete(ctx, instance, element)
            return
        ctx.emit_pi(instance, "ELEMENT_COMPLETED")
        scope_key = instance.flow_scope_key
        # Tokens already on their way (queued activations) die with the scope.
        ctx.closing_scopes.add(scope_key)
        terminate_children(ctx, scope_key)
        queue_complete(ctx, scope_key)
