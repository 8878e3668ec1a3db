"""The PROCESS element: the root scope of a process instance (called or not)."""

from __future__ import annotations

import functools
from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior, behavior_for
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import BaseBehavior, queue_activate


@behavior("PROCESS")
class ProcessBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        open_subscriptions(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        start = element.none_start_event
        if start is not None and instance.key not in ctx.scopes_without_start:
            queue_activate(ctx, start, instance.key, ProcessInfo.of(instance))

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
        root_variables = ctx.state.local_variables(instance.key)
        parent_key = instance.parent_element_instance_key
        if parent_key > 0:
            # The calling element decides what it takes (before COMPLETED drops the variables;
            # its own completion is queued, so the records keep Zeebe's order).
            parent = ctx.state.element_instances.get(parent_key)
            if parent is not None and parent.state == "ELEMENT_ACTIVATED":
                behavior_for(parent.element_type).on_child_completed(
                    ctx, parent, ctx.element_of(parent), instance
                )
        else:
            ctx.after_command.append(
                functools.partial(ctx.on_process_completed, instance.key, root_variables)
            )
        ctx.emit_pi(instance, "ELEMENT_COMPLETED")

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
