"""Events: start, end (none, terminate, error, signal, escalation; message: job-based),
intermediate throw (none, signal, escalation, link; message: job-based), boundary and
intermediate catch events. What a catch event waits for is a trigger kind
(engine/processing/triggers/), not this module's business.

A link throw event completes and activates the link catch event of the same name in its scope
(no sequence flow, as Zeebe); a link catch event passes through. A catch event after an
event-based gateway is activated only once its event triggered (the gateway chose it): it
passes through with the event's variables. A message throw or end event with a job type is
run by the service task's behaviour (looked up in the registry), as Zeebe runs them."""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior, behavior_for
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import (
    BaseBehavior,
    activate_element,
    path_ended,
    queue_complete,
    take_completion_variables,
    terminate_children,
)
from engine.processing.triggers.compensation import throw_compensation
from engine.processing.triggers.errors import throw_end_event_error
from engine.processing.triggers.escalations import escalation_code, throw_escalation
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
        if element.job_type is not None:
            behavior_for("SERVICE_TASK").activate(ctx, instance, element)
            return
        apply_input_mappings(ctx, instance, element)
        if instance.event_type == "SIGNAL":
            throw_signal(ctx, instance, element)
        code = escalation_code(ctx, instance, element) if instance.event_type == "ESCALATION" else None
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        if instance.event_type == "COMPENSATION" and throw_compensation(ctx, instance, element):
            return  # waits until the compensation handlers it started have completed
        if code is not None and not throw_escalation(ctx, instance, element, code):
            return  # an interrupting catch ended the scope, and this event with it
        queue_complete(ctx, instance.key, take_completion_variables(ctx, instance.key))

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if element.job_type is not None:
            behavior_for("SERVICE_TASK").complete(ctx, instance, element)
            return
        if instance.event_type != "LINK":
            super().complete(ctx, instance, element)
            return
        ctx.emit_pi(instance, "ELEMENT_COMPLETED")
        scope = element.flow_scope
        catch = getattr(scope, "link_catch_events", {}).get(element.link_name) if scope is not None else None
        if catch is None:  # validated at deployment; defensive
            path_ended(ctx, instance.flow_scope_key, instance)
            return
        activate_element(ctx, catch, instance.flow_scope_key, ProcessInfo.of(instance))

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if element.job_type is not None:
            behavior_for("SERVICE_TASK").terminate(ctx, instance, element)


@behavior("INTERMEDIATE_CATCH_EVENT")
class CatchEventBehavior(BaseBehavior):
    """Waits until one of its subscriptions is triggered (`subscriptions.trigger` completes it)."""

    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        if instance.event_type == "LINK" or _after_event_based_gateway(element):
            ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
            queue_complete(ctx, instance.key, take_completion_variables(ctx, instance.key))
            return
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
        if element.job_type is not None:
            behavior_for("SERVICE_TASK").activate(ctx, instance, element)
            return
        apply_input_mappings(ctx, instance, element)
        if instance.event_type == "SIGNAL":
            throw_signal(ctx, instance, element)
        code = escalation_code(ctx, instance, element) if instance.event_type == "ESCALATION" else None
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        if instance.event_type == "COMPENSATION" and throw_compensation(ctx, instance, element):
            return  # waits until the compensation handlers it started have completed
        if code is not None and not throw_escalation(ctx, instance, element, code):
            return  # an interrupting catch ended the scope, and this event with it
        queue_complete(ctx, instance.key, take_completion_variables(ctx, instance.key))

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if element.job_type is not None:
            behavior_for("SERVICE_TASK").terminate(ctx, instance, element)

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if element.job_type is not None:
            behavior_for("SERVICE_TASK").complete(ctx, instance, element)
            return
        if instance.event_type != "TERMINATE":
            super().complete(ctx, instance, element)
            return
        ctx.emit_pi(instance, "ELEMENT_COMPLETED")
        scope_key = instance.flow_scope_key
        # Tokens already on their way (queued activations) die with the scope.
        ctx.closing_scopes.add(scope_key)
        terminate_children(ctx, scope_key)
        queue_complete(ctx, scope_key)


def _after_event_based_gateway(element: Any) -> bool:
    """Activated only when the event-based gateway before it chose it (its event triggered)."""
    incoming = element.incoming
    return bool(incoming) and all(
        flow.source.element_type.value == "EVENT_BASED_GATEWAY" for flow in incoming
    )
