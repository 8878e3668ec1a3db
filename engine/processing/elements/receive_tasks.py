"""Receive tasks (reference §5.2 "Messages"): wait for their message like an intermediate
message catch event, but, being activities, may have boundary events (whose subscriptions are
opened alongside)."""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import BaseBehavior
from engine.processing.triggers.messages import MessageTrigger
from engine.processing.variables import apply_input_mappings

_MESSAGE = MessageTrigger()


@behavior("RECEIVE_TASK")
class ReceiveTaskBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        # Its own message is evaluated first, then the boundary events': an expression that
        # fails leaves nothing written (the incident re-runs the activation).
        own = _MESSAGE.evaluate(ctx, instance, element)
        open_subscriptions(ctx, instance, element)
        _MESSAGE.open(ctx, instance, element, own)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        _MESSAGE.close(ctx, instance, element)
        close_subscriptions(ctx, instance, element)
        super().complete(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        _MESSAGE.close(ctx, instance, element)
        close_subscriptions(ctx, instance, element)
