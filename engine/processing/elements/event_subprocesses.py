"""Event sub-processes: started inside their scope by the trigger of one of their start events
(timer, error; message and signal to come) through `subscriptions.trigger`, never by a flow.
An interrupting one has already terminated the scope's other children; when it completes, the
scope completes (there is nothing else left in it)."""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import BaseBehavior
from engine.processing.variables import apply_input_mappings


@behavior("EVENT_SUB_PROCESS")
class EventSubProcessBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        open_subscriptions(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        # the start event that was triggered is activated by `subscriptions.trigger`

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
        super().complete(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
