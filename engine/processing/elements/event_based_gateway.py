"""The event-based gateway (reference §5.2; Zeebe's EventBasedGatewayProcessor).

On activation the gateway opens the subscriptions of the intermediate catch events its flows
lead to (message, timer, signal: each through its trigger kind, all evaluated before any is
opened, so a failing expression is an incident with nothing written). The first event that
triggers wins: the gateway completes, closing the other subscriptions, the flow to that event
is taken, and the catch event activates and completes at once with the event's variables
(elements/events.py passes a catch event after an event-based gateway straight through).
"""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior, trigger_kind_for
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.transitions import BaseBehavior, activate_element


def _events_of(element: Any) -> list[tuple[Any, Any]]:
    """(flow, catch event) for each outgoing flow of the gateway."""
    return [(flow, flow.target) for flow in element.outgoing]


@behavior("EVENT_BASED_GATEWAY")
class EventBasedGatewayBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        evaluated = []
        for _flow, catch_event in _events_of(element):
            kind = trigger_kind_for(catch_event.event_type.value)
            if kind is not None:
                evaluated.append((kind, catch_event, kind.evaluate(ctx, instance, catch_event)))
        for kind, catch_event, value in evaluated:
            kind.open(ctx, instance, catch_event, value)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        # Only a triggered event completes the gateway (on_event_triggered).
        return None

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        _close_all(ctx, instance, element)

    def on_event_triggered(
        self,
        ctx: ProcessingContext,
        owner: ElementInstance,
        catch_event: Any,
        variables: dict[str, Any] | None,
    ) -> int | None:
        """One of the gateway's events triggered (subscriptions.trigger): it wins."""
        if owner.state != "ELEMENT_ACTIVATED":
            return None
        element = ctx.element_of(owner)
        chosen = next((flow for flow, event in _events_of(element) if event is catch_event), None)
        if chosen is None:
            return None
        ctx.emit_pi(owner, "ELEMENT_COMPLETING")
        _close_all(ctx, owner, element)
        ctx.emit_pi(owner, "ELEMENT_COMPLETED")
        value = owner.record_value()
        value.update(bpmnElementType="SEQUENCE_FLOW", elementId=chosen.id, bpmnEventType="UNSPECIFIED")
        ctx.emit("PROCESS_INSTANCE", "SEQUENCE_FLOW_TAKEN", ctx.state.new_key(), value)
        return activate_element(
            ctx,
            catch_event,
            owner.flow_scope_key,
            ProcessInfo.of(owner),
            completion_variables=variables or None,
        )


def _close_all(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    for _flow, catch_event in _events_of(element):
        kind = trigger_kind_for(catch_event.event_type.value)
        if kind is not None:
            kind.close(ctx, instance, catch_event)
