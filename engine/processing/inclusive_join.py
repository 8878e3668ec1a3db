"""When a joining inclusive gateway may activate (Zeebe 8.6's converging inclusive gateway):
once no token can still arrive on an incoming flow that has none yet.

A token "can still arrive" if an element instance active in the gateway's flow scope, or a
token on its way to an element of that scope, can reach one of those flows by following
sequence flows (and the flows of boundary events) forward, without passing the gateway itself.
`transitions.take_flow` asks this for every token that reaches such a gateway; a path that
ends elsewhere asks it again through `pending_joins` (the gateways waiting in that scope).
"""

from __future__ import annotations

from typing import Any

from engine.processing.state import ElementInstance, PartitionState


def _successors(element: Any) -> list[Any]:
    flows = list(element.outgoing)
    for boundary in getattr(element, "boundary_events", ()):
        flows.extend(boundary.outgoing)
    return flows


def join_ready(state: PartitionState, scope: ElementInstance, gateway: Any) -> bool:
    """True if every incoming flow of `gateway` that has no token can no longer get one."""
    incoming_ids = {flow.id for flow in gateway.incoming}
    waiting = {flow_id for flow_id in incoming_ids if scope.taken.get(flow_id, 0) > 0}
    if not waiting:
        return False
    if len(waiting) == len(incoming_ids):
        return True
    model = state.model(scope.process_definition_key)
    starts: list[Any] = []
    for child_key in state.children.get(scope.key, {}):
        child = state.element_instances.get(child_key)
        if child is not None and child.state in (
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_COMPLETING",
        ):
            element = model.elements_by_id.get(child.element_id)
            if element is not None:
                starts.append(element)
    for flow_id, count in scope.taken.items():
        if count > 0 and flow_id not in incoming_ids:
            flow = model.flows_by_id.get(flow_id)
            if flow is not None:
                starts.append(flow.target)
    seen: set[str] = set()
    stack = starts
    while stack:
        element = stack.pop()
        if element is gateway or element.id in seen:
            continue
        seen.add(element.id)
        for flow in _successors(element):
            if flow.target is gateway:
                if flow.id not in waiting:
                    return False
                continue
            stack.append(flow.target)
    return True


def pending_joins(state: PartitionState, scope: ElementInstance) -> list[Any]:
    """The joining inclusive gateways of `scope` that hold tokens (waiting to activate)."""
    if not scope.taken:
        return []
    model = state.model(scope.process_definition_key)
    gateways: dict[str, Any] = {}
    for flow_id, count in scope.taken.items():
        flow = model.flows_by_id.get(flow_id)
        if count <= 0 or flow is None:
            continue
        target = flow.target
        if target.element_type.value == "INCLUSIVE_GATEWAY" and len(target.incoming) > 1:
            gateways[target.id] = target
    return list(gateways.values())
