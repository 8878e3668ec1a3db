"""The state-transition behaviour (Zeebe's BpmnStateTransitionBehavior): the one way to
activate, complete and terminate element instances and to take sequence flows.

Element behaviours reach each other only through this module, and this module reaches a
behaviour only through `registry.behavior_for(element type)`: no behaviour imports another,
and nothing here imports a behaviour, so the element families cannot form an import cycle.

Lifecycle of an element instance (records in Zeebe's order, reference §3.8):
- `activate_element`: ELEMENT_ACTIVATING, then the behaviour's `activate` (which writes
  ELEMENT_ACTIVATED, and queues `complete_element` if the element does not wait);
- `complete_element`: ELEMENT_COMPLETING, output mappings, then the behaviour's `complete`
  (normally `BaseBehavior.complete`: ELEMENT_COMPLETED and the outgoing flows);
- `terminate_element`: ELEMENT_TERMINATING, the children, the behaviour's `terminate`,
  ELEMENT_TERMINATED.
A `MappingFailure` in `activate` or in the output mappings leaves the instance in
ACTIVATING/COMPLETING with an incident; resolving it re-runs `run_activation`/`run_completion`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.compensation import (
    delete_subscriptions,
    handler_completed,
    subscribe_completed_activity,
)
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.incidents import raise_incident, resolve_incidents_of
from engine.processing.inclusive_join import join_ready, pending_joins
from engine.processing.registry import behavior_for
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.variables import apply_output_mappings
from engine.records import process_instance_value


class BaseBehavior:
    """Defaults for element behaviours: pass through (activate, then complete at once), leave
    by the outgoing flows, nothing to release on termination, complete a scope whose last
    path ended."""

    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        queue_complete(ctx, instance.key)

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        ctx.emit_pi(instance, "ELEMENT_COMPLETED")
        take_outgoing(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        return None

    def on_child_completed(
        self, ctx: ProcessingContext, scope: ElementInstance, element: Any, child: ElementInstance | None
    ) -> None:
        check_scope_completion(ctx, scope.key)


# ---------------------------------------------------------------------- activation
def activate_element(
    ctx: ProcessingContext,
    element: Any,
    flow_scope_key: int,
    proc: ProcessInfo,
    key: int | None = None,
    completion_variables: dict[str, Any] | None = None,
) -> int | None:
    """Write ELEMENT_ACTIVATING for a new instance of `element` and run its activation.
    None if the flow scope is gone or ending (the token dies with it)."""
    return _activate(
        ctx, flow_scope_key, key, activation_value(ctx, element, flow_scope_key, proc), completion_variables
    )


def activation_value(
    ctx: ProcessingContext, element: Any, flow_scope_key: int, proc: ProcessInfo
) -> dict[str, Any]:
    """The PROCESS_INSTANCE value of a new instance of `element` (its ACTIVATE_ELEMENT command
    and its ELEMENT_ACTIVATING event)."""
    element_type, event_type = element.element_type.value, element.event_type.value
    if is_multi_instance(element) and not _inside_own_body(ctx, element, flow_scope_key):
        # the activity is entered through its multi-instance body (elements/multi_instance.py)
        element_type, event_type = "MULTI_INSTANCE_BODY", "UNSPECIFIED"
    value = process_instance_value(
        bpmn_element_type=element_type,
        element_id=element.id,
        bpmn_process_id=proc.bpmn_process_id,
        version=proc.version,
        process_definition_key=proc.process_definition_key,
        process_instance_key=proc.process_instance_key,
        flow_scope_key=flow_scope_key,
        bpmn_event_type=event_type,
        parent_process_instance_key=proc.parent_process_instance_key,
        parent_element_instance_key=proc.parent_element_instance_key,
    )
    return value


def _activate(
    ctx: ProcessingContext,
    flow_scope_key: int,
    key: int | None,
    value: dict[str, Any],
    completion_variables: dict[str, Any] | None = None,
) -> int | None:
    if flow_scope_key > 0:
        scope = ctx.state.element_instances.get(flow_scope_key)
        if scope is None or not scope.is_active or flow_scope_key in ctx.closing_scopes:
            return None
    if key is None or key < 0:
        key = ctx.state.new_key()
    if completion_variables:
        ctx.completion_variables[key] = completion_variables
    ctx.emit("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", key, value)
    run_activation(ctx, key)
    return key


def is_multi_instance(element: Any) -> bool:
    return getattr(element, "multi_instance", None) is not None


def is_inner_instance(instance: ElementInstance, element: Any) -> bool:
    """An instance running inside the multi-instance body of its own element."""
    return instance.element_type != "MULTI_INSTANCE_BODY" and is_multi_instance(element)


def _inside_own_body(ctx: ProcessingContext, element: Any, flow_scope_key: int) -> bool:
    scope = ctx.state.element_instances.get(flow_scope_key)
    return (
        scope is not None and scope.element_type == "MULTI_INSTANCE_BODY" and scope.element_id == element.id
    )


def queue_activate(
    ctx: ProcessingContext,
    element: Any,
    flow_scope_key: int,
    proc: ProcessInfo,
    key: int = -1,
    work: Callable[[], object] | None = None,
) -> None:
    """Log the ACTIVATE_ELEMENT follow-up command for a new instance of `element` and queue
    its activation. Key -1 (Zeebe's activateChildInstance: a scope's start event): the instance
    key is taken when the command is processed; a key taken now (a flow's target, a new process
    instance) is the command's key and the instance's. `work` replaces the plain activation
    (a process instance entered at start instructions)."""
    value = activation_value(ctx, element, flow_scope_key, proc)
    if work is None:
        work = functools.partial(_activate, ctx, flow_scope_key, key, value)
    ctx.follow_up_command("PROCESS_INSTANCE", "ACTIVATE_ELEMENT", key, value, work)


def run_activation(ctx: ProcessingContext, key: int) -> None:
    """The behaviour's activation; re-run when an incident in ACTIVATING is resolved."""
    instance = ctx.state.element_instances[key]
    element = ctx.element_of(instance)
    try:
        behavior_for(instance.element_type).activate(ctx, instance, element)
    except MappingFailure as failure:
        raise_incident(ctx, ctx.state.element_instances[key], failure.error_type, failure.message)


def take_completion_variables(ctx: ProcessingContext, key: int) -> dict[str, Any] | None:
    """Variables handed to this instance on activation (a caught error's, a message's...)."""
    return ctx.completion_variables.pop(key, None)


# ---------------------------------------------------------------------- completion
def complete_element(ctx: ProcessingContext, key: int, variables: dict[str, Any] | None = None) -> None:
    instance = ctx.state.element_instances.get(key)
    if instance is None or instance.state != "ELEMENT_ACTIVATED":
        return
    ctx.emit_pi(instance, "ELEMENT_COMPLETING")
    run_completion(ctx, key, variables)


def queue_complete(ctx: ProcessingContext, key: int, variables: dict[str, Any] | None = None) -> None:
    """Log the COMPLETE_ELEMENT follow-up command (key and value of the instance) and queue the
    completion. A none end event completes at once, in its activation's step (Zeebe's
    NoneEndEventBehavior: ACTIVATING..COMPLETED all come from its ACTIVATE_ELEMENT)."""
    instance = ctx.state.element_instances.get(key)
    if instance is None:
        return
    if instance.element_type == "END_EVENT" and instance.event_type == "NONE":
        complete_element(ctx, key, variables)
        return
    ctx.follow_up_command(
        "PROCESS_INSTANCE",
        "COMPLETE_ELEMENT",
        key,
        instance.record_value(),
        functools.partial(complete_element, ctx, key, variables),
    )


def run_completion(ctx: ProcessingContext, key: int, variables: dict[str, Any] | None) -> None:
    """Output mappings and the behaviour's completion; re-run after an output-mapping incident."""
    instance = ctx.state.element_instances[key]
    element = ctx.element_of(instance)
    try:
        if instance.element_type != "MULTI_INSTANCE_BODY":  # the body propagates its output collection
            apply_output_mappings(ctx, instance, element, variables)
        if is_inner_instance(instance, element):
            body = ctx.state.element_instances[instance.flow_scope_key]
            behavior_for(body.element_type).on_child_completing(ctx, body, element, instance)  # type: ignore[attr-defined]
    except MappingFailure as failure:
        raise_incident(ctx, instance, failure.error_type, failure.message)
        return
    # Zeebe writes COMPENSATION_SUBSCRIPTION CREATED/DELETED before ELEMENT_COMPLETED
    subscribe_completed_activity(ctx, instance, element)
    if instance.element_type == "PROCESS":
        delete_subscriptions(ctx, instance.process_instance_key)
    behavior_for(instance.element_type).complete(ctx, instance, element)
    throw_key = handler_completed(ctx, instance)
    if throw_key is not None:  # the last handler a compensation throw event started
        queue_complete(ctx, throw_key)


def take_outgoing(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    """Take every outgoing flow whose condition holds; none: the path ends in the scope."""
    if is_inner_instance(instance, element):
        path_ended(ctx, instance.flow_scope_key, instance)  # back to its multi-instance body
        return
    flows = []
    if element.outgoing:
        variables: dict[str, Any] | None = None
        for flow in element.outgoing:
            if flow.condition is not None and instance.element_type != "PARALLEL_GATEWAY":
                if variables is None:
                    variables = ctx.state.visible_variables(instance.flow_scope_key)
                try:
                    if evaluate(flow.condition, variables, "CONDITION_ERROR") is not True:
                        continue
                except MappingFailure:
                    continue
            flows.append(flow)
    if not flows:
        path_ended(ctx, instance.flow_scope_key, instance)
        return
    for flow in flows:
        take_flow(ctx, flow, instance)


def take_flow(ctx: ProcessingContext, flow: Any, source: ElementInstance) -> None:
    flow_scope_key = source.flow_scope_key
    value = source.record_value()
    value.update(bpmnElementType="SEQUENCE_FLOW", elementId=flow.id, bpmnEventType="UNSPECIFIED")
    ctx.emit("PROCESS_INSTANCE", "SEQUENCE_FLOW_TAKEN", ctx.state.new_key(), value)
    target = flow.target
    proc = ProcessInfo.of(source)
    if target.element_type.value == "INCLUSIVE_GATEWAY" and len(target.incoming) > 1:
        queue_join(ctx, flow_scope_key, target, proc)
        return
    if target.element_type.value == "PARALLEL_GATEWAY" and len(target.incoming) > 1:
        scope = ctx.state.element_instances.get(flow_scope_key)
        if scope is None:
            return
        if all(scope.taken.get(incoming.id, 0) > 0 for incoming in target.incoming):
            queue_activate(ctx, target, flow_scope_key, proc, key=ctx.state.new_key())
        return
    # Zeebe's activateElementInstanceInFlowScope: the target's key is taken with the flow.
    queue_activate(ctx, target, flow_scope_key, proc, key=ctx.state.new_key())


def path_ended(ctx: ProcessingContext, scope_key: int, child: ElementInstance | None) -> None:
    """A path inside `scope_key` ended: the scope's behaviour decides (complete the scope...)."""
    scope = ctx.state.element_instances.get(scope_key)
    if scope is None:
        return
    behavior_for(scope.element_type).on_child_completed(ctx, scope, ctx.element_of(scope), child)


def check_scope_completion(ctx: ProcessingContext, scope_key: int) -> None:
    """Complete the scope once nothing is active in it and no token is on its way."""
    scope = ctx.state.element_instances.get(scope_key)
    if scope is None or scope.state != "ELEMENT_ACTIVATED":
        return
    if scope.taken:
        # a joining inclusive gateway of the scope may have waited for this path
        for gateway in pending_joins(ctx.state, scope):
            queue_join(ctx, scope_key, gateway, ProcessInfo.of(scope))
    if ctx.state.children.get(scope_key) or scope.taken:
        return
    queue_complete(ctx, scope_key)


def queue_join(ctx: ProcessingContext, scope_key: int, gateway: Any, proc: ProcessInfo) -> None:
    """Activate the joining inclusive gateway once no further token can reach it (checked when
    the queued step runs: tokens on their way then count, and a second check finds the tokens
    consumed by the first)."""

    def join() -> None:
        scope = ctx.state.element_instances.get(scope_key)
        if scope is not None and scope.is_active and join_ready(ctx.state, scope, gateway):
            activate_element(ctx, gateway, scope_key, proc)

    ctx.queue.append(join)


# ---------------------------------------------------------------------- termination
def terminate_element(ctx: ProcessingContext, key: int) -> None:
    """Terminate an element instance and its whole subtree (children, called instances)."""
    instance = ctx.state.element_instances.get(key)
    if instance is None or instance.state == "ELEMENT_TERMINATING":
        return
    ctx.emit_pi(instance, "ELEMENT_TERMINATING")
    for child_key in list(ctx.state.children.get(key, {})):
        terminate_element(ctx, child_key)
    behavior_for(instance.element_type).terminate(ctx, instance, ctx.element_of(instance))
    resolve_incidents_of(ctx, key)
    ctx.completion_variables.pop(key, None)
    if instance.element_type == "PROCESS":
        delete_subscriptions(ctx, instance.process_instance_key)
    ctx.emit_pi(instance, "ELEMENT_TERMINATED")


def terminate_children(ctx: ProcessingContext, scope_key: int, keep: int = -1) -> None:
    for child_key in list(ctx.state.children.get(scope_key, {})):
        if child_key != keep:
            terminate_element(ctx, child_key)


# ---------------------------------------------------------------------- flow scopes
def active_instances_of(ctx: ProcessingContext, element_id: str, process_instance_key: int) -> list[int]:
    return [
        key
        for key, instance in ctx.state.element_instances.items()
        if instance.element_id == element_id
        and instance.process_instance_key == process_instance_key
        and instance.is_active
    ]


def ensure_flow_scope(
    ctx: ProcessingContext, element: Any, process_instance_key: int, ancestor_key: int
) -> int | None:
    """The flow-scope instance for activating `element` out of order (start instructions,
    modification), creating missing sub-process instances on the way (Zeebe
    ElementActivationBehavior)."""
    scope = element.flow_scope
    if scope is None or scope.element_type.value == "PROCESS":
        return process_instance_key
    if ancestor_key > 0:
        ancestor = ctx.state.element_instances.get(ancestor_key)
        if ancestor is not None and ancestor.element_id == scope.id:
            return ancestor_key
    else:
        active = active_instances_of(ctx, scope.id, process_instance_key)
        if active:
            return active[0]
    parent_scope_key = ensure_flow_scope(ctx, scope, process_instance_key, ancestor_key)
    if parent_scope_key is None:
        return None
    parent = ctx.state.element_instances[parent_scope_key]
    key = ctx.state.new_key()
    ctx.scopes_without_start.add(key)
    try:
        activate_element(ctx, scope, parent_scope_key, ProcessInfo.of(parent), key=key)
    finally:
        ctx.scopes_without_start.discard(key)
    return key
