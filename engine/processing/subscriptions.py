"""The catch-event behaviour (Zeebe's BpmnEventSubscriptionBehavior): event subscriptions of an
element instance, and what happens when one is triggered.

An element instance owns catch events when it is an activity with boundary events, an
intermediate catch event (it catches for itself), or a scope with event sub-processes (their
start events). Its behaviour calls `open_subscriptions` when it is activated and
`close_subscriptions` when it completes or is terminated; each catch event is handed to the
trigger kind registered for its event type (`registry.trigger_kind`: ERROR, TIMER; later
MESSAGE, SIGNAL...), which writes what listening takes (TIMER CREATED / CANCELED...).
Behaviours open subscriptions before they write ELEMENT_ACTIVATED (after their own
evaluations), close them before ELEMENT_COMPLETED / ELEMENT_TERMINATED.

A trigger source (a due timer, a correlated message, a thrown error) calls
`trigger(ctx, owner_key, catch_event, variables)`:
- boundary event: interrupting terminates the activity, then activates the boundary event;
  non-interrupting activates it beside the activity, which stays active;
- intermediate catch event (the owner itself): completes it with the variables;
- event sub-process start event: interrupting terminates the scope's other children first;
  then the event sub-process is activated inside the scope, its start event completing with
  the variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.registry import behavior_for, trigger_kind_for
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.transitions import (
    activate_element,
    complete_element,
    terminate_children,
    terminate_element,
)

CATCH_ELEMENT_TYPES = ("INTERMEDIATE_CATCH_EVENT", "RECEIVE_TASK")


def catch_search_path(ctx: ProcessingContext, start_key: int) -> Iterator[ElementInstance]:
    """The instances an error or escalation thrown at `start_key` is looked for at, innermost
    first: Zeebe's CatchEventAnalyzer. Within one process instance the walk goes up the flow scopes while they
    are active and not interrupted (what is thrown inside an interrupting event sub-process is
    not caught by the scope it interrupted or above it in that process: a catch-all there would
    trigger that event sub-process again, forever); then it goes on from the call activity that called the
    process, the same way, while that one is active."""
    instance = ctx.state.element_instances.get(start_key)
    while instance is not None and instance.is_active:
        current: ElementInstance | None = instance
        while current is not None and current.is_active and not current.interrupted:
            yield current
            if current.element_type == "PROCESS":
                break
            current = ctx.state.element_instances.get(current.flow_scope_key)
        instance = ctx.state.element_instances.get(instance.parent_element_instance_key)


def catch_events_of(element: Any, instance: ElementInstance | None = None) -> list[Any]:
    """The catch events an instance of `element` listens for while it is active. A
    multi-instance activity's boundary events belong to its body, the rest to each inner
    instance."""
    if getattr(element, "multi_instance", None) is not None:
        if instance is not None and instance.element_type == "MULTI_INSTANCE_BODY":
            return list(element.boundary_events)
        events = []
    else:
        events = list(element.boundary_events)
    if element.element_type.value == "INTERMEDIATE_CATCH_EVENT":
        events.append(element)
    for sub_process in getattr(element, "event_sub_processes", ()):
        events.extend(getattr(sub_process, "start_events", ()))
    return events


def open_subscriptions(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    """Open the subscriptions of every catch event the instance owns. All are evaluated before
    any is opened: a `MappingFailure` leaves nothing behind (call this before anything else
    that writes, so that resolving the incident can re-run the activation)."""
    evaluated = []
    for catch_event in catch_events_of(element, instance):
        kind = trigger_kind_for(catch_event.event_type.value)
        if kind is not None:
            evaluated.append((kind, catch_event, kind.evaluate(ctx, instance, catch_event)))
    for kind, catch_event, value in evaluated:
        kind.open(ctx, instance, catch_event, value)


def close_subscriptions(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    for catch_event in catch_events_of(element, instance):
        kind = trigger_kind_for(catch_event.event_type.value)
        if kind is not None:
            kind.close(ctx, instance, catch_event)


def is_interrupting(catch_event: Any) -> bool:
    if catch_event.element_type.value == "BOUNDARY_EVENT":
        return bool(catch_event.cancel_activity)
    return bool(getattr(catch_event, "interrupting", True))


def trigger(
    ctx: ProcessingContext, owner_key: int, catch_event: Any, variables: dict[str, Any] | None
) -> int | None:
    """Trigger `catch_event` owned by the instance `owner_key`; returns the key of the element
    instance that now carries the flow (None if the owner is gone)."""
    owner = ctx.state.element_instances.get(owner_key)
    if owner is None:
        return None
    # an owner that decides itself what its events do (the event-based gateway)
    on_event_triggered = getattr(behavior_for(owner.element_type), "on_event_triggered", None)
    if on_event_triggered is not None:
        result: int | None = on_event_triggered(ctx, owner, catch_event, variables)
        return result
    element_type = catch_event.element_type.value
    if element_type == "BOUNDARY_EVENT":
        scope_key = owner.flow_scope_key
        proc = ProcessInfo.of(owner)
        if catch_event.cancel_activity:
            terminate_element(ctx, owner_key)
        return activate_element(ctx, catch_event, scope_key, proc, completion_variables=variables or None)
    if owner.element_id == catch_event.id:
        # an intermediate catch event (or receive task) completes with the variables
        complete_element(ctx, owner_key, variables or None)
        return owner_key
    # an event sub-process start event of the scope `owner`
    sub_process = catch_event.flow_scope
    proc = ProcessInfo.of(owner)
    if is_interrupting(catch_event):
        # The scope is interrupted: no other event sub-process of it starts any more (its
        # boundary events stay), and what ran in it ends.
        scope_element = ctx.element_of(owner)
        for other in getattr(scope_element, "event_sub_processes", ()):
            for start in getattr(other, "start_events", ()):
                kind = trigger_kind_for(start.event_type.value)
                if kind is not None:
                    kind.close(ctx, owner, start)
        terminate_children(ctx, owner_key)
    key = ctx.state.new_key()
    # The event sub-process is entered at the triggered start event, not its none start event.
    ctx.scopes_without_start.add(key)
    try:
        activated = activate_element(ctx, sub_process, owner_key, proc, key=key)
    finally:
        ctx.scopes_without_start.discard(key)
    if activated is None:
        return None
    activate_element(ctx, catch_event, key, proc, completion_variables=variables or None)
    return key
