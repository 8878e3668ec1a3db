"""The inclusive gateway (reference §5.2; Zeebe's InclusiveGatewayProcessor).

Fork: every outgoing flow whose condition is true is taken (in XML order); none true: the
default flow; none and no default: a CONDITION_ERROR incident, as Zeebe. A condition that fails
or is not a boolean is an incident too (nothing is taken), resolved by fixing the variables.

Join (more than one incoming flow): the gateway activates once every token that can still
arrive has arrived (`engine/processing/inclusive_join.py`, asked by `transitions.take_flow`
and again whenever a path of the scope ends), consuming the tokens that wait on it.
"""

from __future__ import annotations

from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance
from engine.processing.transitions import BaseBehavior, take_flow
from engine.values import feel_type_name


@behavior("INCLUSIVE_GATEWAY")
class InclusiveGatewayBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        flows = choose_inclusive_flows(ctx, instance, element)  # before anything is written
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        ctx.emit_pi(instance, "ELEMENT_COMPLETING")
        ctx.emit_pi(instance, "ELEMENT_COMPLETED")
        for flow in flows:
            take_flow(ctx, flow, instance)


def choose_inclusive_flows(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> list[Any]:
    outgoing = element.outgoing
    if len(outgoing) == 1 and outgoing[0].condition is None:
        return [outgoing[0]]
    variables = ctx.state.visible_variables(instance.flow_scope_key)
    chosen = []
    for flow in outgoing:
        if flow is element.default_flow:
            continue
        if flow.condition is None:
            chosen.append(flow)
            continue
        result = evaluate(flow.condition, variables, "CONDITION_ERROR")
        if not isinstance(result, bool):
            raise MappingFailure(
                "CONDITION_ERROR",
                f"Expected result of the expression '{flow.condition.text}' to be 'BOOLEAN', "
                f"but was '{feel_type_name(result)}'.",
            )
        if result:
            chosen.append(flow)
    if chosen:
        return chosen
    if element.default_flow is not None:
        return [element.default_flow]
    raise MappingFailure(
        "CONDITION_ERROR",
        "Expected at least one condition to evaluate to true, or to have a default flow",
    )
