"""Compensation throw and end events (Zeebe 8.5's triggerCompensation /
triggerCompensationForActivity): start the compensation handlers of completed activities.

A compensation throw event (intermediate or end) with no `activityRef` triggers every
not-yet-triggered compensation subscription of its flow scope (inside an event sub-process:
also of the event sub-process's own flow scope); with one, only the
subscriptions of that activity in its flow scope. Triggering a sub-process's subscription goes
on into the subscriptions of the activities that completed inside it (top to bottom). For each
subscription with a handler, the compensation boundary event is written as activated and
completed at once (four events, no command), and the handler is activated (a follow-up) in the throw event's flow scope with bpmnEventType COMPENSATION (a
job-based handler is an ordinary job for workers). The throw event stays ELEMENT_ACTIVATED
until every handler it started has completed (engine/processing/compensation.py completes it);
when nothing was there to compensate, it completes at once.

Compensation is not a catch-event kind: no subscription is opened when an activity starts, so
nothing is registered with `registry.trigger_kind`.
"""

from __future__ import annotations

import functools
from typing import Any

from engine.bpmn.model import EventType
from engine.processing.compensation import compensation_boundary_of
from engine.processing.context import ProcessingContext
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.transitions import activate_element


def throw_compensation(ctx: ProcessingContext, throw: ElementInstance, element: Any) -> bool:
    """Trigger the compensation of `throw` (ELEMENT_ACTIVATED already written); False if
    nothing was there to compensate (the throw event then completes as usual)."""
    subscriptions = {
        key: value
        for key, value in ctx.state.compensation_state.of_instance(throw.process_instance_key).items()
        if not value["throwEventId"]  # one already triggered is not compensated twice
    }
    scope_keys = {throw.flow_scope_key}
    flow_scope = getattr(element, "flow_scope", None)
    if flow_scope is not None and flow_scope.element_type.value == "EVENT_SUB_PROCESS":
        # inside an event sub-process, the activities completed in the scope the event
        # sub-process interrupted (or runs beside) are compensated too
        event_sub_process = ctx.state.element_instances.get(throw.flow_scope_key)
        if event_sub_process is not None:
            scope_keys.add(event_sub_process.flow_scope_key)
    definition = getattr(element, "compensation", None)
    activity = getattr(definition, "activity", None)
    chosen = [
        key
        for key, value in subscriptions.items()
        if value["compensableActivityScopeKey"] in scope_keys
        and (activity is None or value["compensableActivityId"] == activity.id)
    ]
    for key in chosen:
        _trigger(ctx, throw, key, subscriptions)
    return bool(chosen)


def _trigger(
    ctx: ProcessingContext, throw: ElementInstance, key: int, untriggered: dict[int, dict[str, Any]]
) -> None:
    value = untriggered.pop(key, None)
    if value is None:
        return
    handler_key = -1
    if value["compensationHandlerId"]:
        handler_key = _activate_handler(ctx, throw, str(value["compensableActivityId"]))
    triggered = dict(
        value,
        throwEventId=throw.element_id,
        throwEventInstanceKey=throw.key,
        compensationHandlerInstanceKey=handler_key,
    )
    ctx.emit("COMPENSATION_SUBSCRIPTION", "TRIGGERED", key, triggered)
    # into a completed sub-process: the activities that completed inside it
    inner_scope = value["compensableActivityInstanceKey"]
    for inner_key in [k for k, v in untriggered.items() if v["compensableActivityScopeKey"] == inner_scope]:
        _trigger(ctx, throw, inner_key, untriggered)


def _activate_handler(ctx: ProcessingContext, throw: ElementInstance, activity_id: str) -> int:
    activity = ctx.state.model(throw.process_definition_key).elements_by_id[activity_id]
    boundary = compensation_boundary_of(activity)
    if boundary is None or boundary.compensation_handler is None:  # excluded by validation
        raise LookupError(f"No compensation boundary event found for activity '{activity_id}'")
    boundary_value = throw.record_value()
    boundary_value.update(
        elementId=boundary.id, bpmnElementType="BOUNDARY_EVENT", bpmnEventType="COMPENSATION"
    )
    boundary_key = ctx.state.new_key()
    for intent in ("ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED", "ELEMENT_COMPLETING", "ELEMENT_COMPLETED"):
        ctx.emit("PROCESS_INSTANCE", intent, boundary_key, dict(boundary_value))
    handler_key = ctx.state.new_key()
    handler = _AsCompensationHandler(boundary.compensation_handler)
    ctx.queue.append(
        functools.partial(
            activate_element, ctx, handler, throw.flow_scope_key, ProcessInfo.of(throw), handler_key
        )
    )
    return handler_key


class _AsCompensationHandler:
    """The handler activity as activated by compensation: its records carry bpmnEventType
    COMPENSATION (as Zeebe writes them), which marks the instance as a compensation handler."""

    event_type = EventType.COMPENSATION

    def __init__(self, element: Any):
        self._element = element

    def __getattr__(self, name: str) -> Any:
        return getattr(self._element, name)
