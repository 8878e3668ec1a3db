"""Embedded sub-processes: a scope inside the process with its own variables."""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import BaseBehavior, queue_activate
from engine.processing.variables import apply_input_mappings


@behavior("SUB_PROCESS")
class SubProcessBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        open_subscriptions(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        start = element.none_start_event
        if start is not None and instance.key not in ctx.scopes_without_start:
            queue_activate(ctx, start, instance.key, ProcessInfo.of(instance))

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
        super().complete(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
