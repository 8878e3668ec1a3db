"""Compensation subscriptions (Zeebe 8.5's BpmnCompensationSubscriptionBehaviour), the part the
state-transition module needs: record what completed activities can be compensated, notice a
compensation handler's completion, and forget everything when the process instance ends.

Triggering compensation (a compensation throw or end event starting the handlers) lives in
engine/processing/triggers/compensation.py; it needs the transitions, which import this module.

COMPENSATION_SUBSCRIPTION lifecycle, as Zeebe writes it:
- CREATED when an activity with a compensation boundary event completes (before its
  ELEMENT_COMPLETED), and when a sub-process (or multi-instance body) completes that holds
  subscriptions in its scope (no handler of its own unless it has a compensation boundary
  event): compensation thrown in the parent scope reaches the sub-process's inner activities;
- TRIGGERED by a compensation throw event (throwEventId/throwEventInstanceKey and the
  handler's instance key are filled in);
- COMPLETED when its handler completes; a sub-process's subscription completes once nothing is
  left in its scope; the throw event completes when none of its subscriptions is left;
- DELETED for every subscription left when the process instance completes or is terminated.
"""

from __future__ import annotations

from typing import Any

from engine.processing.context import ProcessingContext
from engine.processing.state import ElementInstance, PartitionState, register_applier

#: Element types that are flow scopes of compensable activities (isFlowScopeWithSubscriptions).
_SCOPE_TYPES = ("SUB_PROCESS", "MULTI_INSTANCE_BODY")


def subscription_value(
    instance: ElementInstance, element: Any, compensation_handler_id: str
) -> dict[str, Any]:
    """The COMPENSATION_SUBSCRIPTION value of a completed activity (CompensationSubscriptionRecord,
    field order as Zeebe's JSON)."""
    flow_scope = getattr(element, "flow_scope", None)
    return {
        "tenantId": instance.tenant_id,
        "processInstanceKey": instance.process_instance_key,
        "processDefinitionKey": instance.process_definition_key,
        "compensableActivityId": instance.element_id,
        "compensableActivityScopeId": flow_scope.id if flow_scope is not None else "",
        "throwEventId": "",
        "throwEventInstanceKey": -1,
        "compensationHandlerId": compensation_handler_id,
        "compensationHandlerInstanceKey": -1,
        "compensableActivityScopeKey": instance.flow_scope_key,
        "compensableActivityInstanceKey": instance.key,
        "variables": {},
    }


def compensation_boundary_of(element: Any) -> Any | None:
    for boundary in getattr(element, "boundary_events", ()):
        if boundary.event_type.value == "COMPENSATION":
            return boundary
    return None


def subscribe_completed_activity(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    """An activity is completing (output mappings done): record that it can be compensated."""
    if instance.element_type == "PROCESS":
        return
    boundary = None
    # A multi-instance activity's boundary events belong to its body (as in Zeebe): the body
    # is compensated once, not each inner instance.
    if getattr(element, "multi_instance", None) is None or instance.element_type == "MULTI_INSTANCE_BODY":
        boundary = compensation_boundary_of(element)
    has_inner = instance.element_type in _SCOPE_TYPES and any(
        value["compensableActivityScopeKey"] == instance.key
        for value in ctx.state.compensation_state.of_instance(instance.process_instance_key).values()
    )
    if boundary is None and not has_inner:
        return
    handler = getattr(boundary, "compensation_handler", None)
    value = subscription_value(instance, element, handler.id if handler is not None else "")
    ctx.emit("COMPENSATION_SUBSCRIPTION", "CREATED", ctx.state.new_key(), value)


def handler_completed(ctx: ProcessingContext, instance: ElementInstance) -> int | None:
    """A compensation handler completed: complete its subscription (and the sub-process
    subscriptions left empty above it). Returns the key of the throw event to complete now
    that all of its handlers are done, or None."""
    if instance.event_type != "COMPENSATION" or instance.element_type == "BOUNDARY_EVENT":
        return None
    subscriptions = ctx.state.compensation_state.of_instance(instance.process_instance_key)
    found = next(
        (
            (key, value)
            for key, value in subscriptions.items()
            if value["throwEventId"] and value["compensationHandlerInstanceKey"] == instance.key
        ),
        None,
    )
    if found is None:
        return None
    key, value = found
    ctx.emit("COMPENSATION_SUBSCRIPTION", "COMPLETED", key, value)
    _complete_empty_scopes(ctx, instance.process_instance_key, value["compensableActivityScopeKey"])
    throw_key = int(value["throwEventInstanceKey"])
    left = ctx.state.compensation_state.of_instance(instance.process_instance_key).values()
    if any(other["throwEventInstanceKey"] == throw_key for other in left):
        return None
    throw = ctx.state.element_instances.get(throw_key)
    return throw_key if throw is not None and throw.state == "ELEMENT_ACTIVATED" else None


def _complete_empty_scopes(ctx: ProcessingContext, process_instance_key: int, scope_key: int) -> None:
    """Zeebe's completeFlowScopeSubscriptionFromBottomToTop: a sub-process's subscription is
    completed once no subscription is left inside it, and so on upwards."""
    for _ in range(10_000):  # bounded by the nesting depth of sub-processes
        subscriptions = ctx.state.compensation_state.of_instance(process_instance_key)
        if any(value["compensableActivityScopeKey"] == scope_key for value in subscriptions.values()):
            return
        found = next(
            (
                (key, value)
                for key, value in subscriptions.items()
                # a sub-process with a handler of its own completes with that handler
                if value["compensableActivityInstanceKey"] == scope_key and not value["compensationHandlerId"]
            ),
            None,
        )
        if found is None:
            return
        key, value = found
        ctx.emit("COMPENSATION_SUBSCRIPTION", "COMPLETED", key, value)
        scope_key = int(value["compensableActivityScopeKey"])


def delete_subscriptions(ctx: ProcessingContext, process_instance_key: int) -> None:
    """The process instance ends: nothing of it can be compensated any more."""
    for key, value in ctx.state.compensation_state.of_instance(process_instance_key).items():
        ctx.emit("COMPENSATION_SUBSCRIPTION", "DELETED", key, value)


# ---------------------------------------------------------------------- appliers
@register_applier("COMPENSATION_SUBSCRIPTION", "CREATED", "TRIGGERED")
def _subscription_put(state: PartitionState, record: dict[str, Any]) -> None:
    state.compensation_state.put(record["key"], record["value"])


@register_applier("COMPENSATION_SUBSCRIPTION", "COMPLETED", "DELETED")
def _subscription_removed(state: PartitionState, record: dict[str, Any]) -> None:
    state.compensation_state.remove(record["key"], int(record["value"]["processInstanceKey"]))
