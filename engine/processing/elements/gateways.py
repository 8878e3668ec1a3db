"""Exclusive and parallel gateways (the parallel join is counted in `transitions.take_flow`)."""

from __future__ import annotations

from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance
from engine.processing.transitions import BaseBehavior, take_flow, take_outgoing
from engine.values import feel_type_name


def _pass(ctx: ProcessingContext, instance: ElementInstance) -> None:
    ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
    ctx.emit_pi(instance, "ELEMENT_COMPLETING")
    ctx.emit_pi(instance, "ELEMENT_COMPLETED")


@behavior("EXCLUSIVE_GATEWAY")
class ExclusiveGatewayBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        flow = choose_exclusive_flow(ctx, instance, element)
        _pass(ctx, instance)
        take_flow(ctx, flow, instance)


@behavior("PARALLEL_GATEWAY")
class ParallelGatewayBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        _pass(ctx, instance)
        take_outgoing(ctx, instance, element)


def choose_exclusive_flow(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> Any:
    """The first flow whose condition is true in XML order, else the default (reference §5.2)."""
    outgoing = element.outgoing
    if len(outgoing) == 1 and outgoing[0].condition is None:
        return outgoing[0]
    variables = ctx.state.visible_variables(instance.flow_scope_key)
    for flow in outgoing:
        if flow is element.default_flow:
            continue
        if flow.condition is None:
            return flow
        result = evaluate(flow.condition, variables, "CONDITION_ERROR")
        if not isinstance(result, bool):
            raise MappingFailure(
                "CONDITION_ERROR",
                f"Expected result of the expression '{flow.condition.text}' to be 'BOOLEAN', "
                f"but was '{feel_type_name(result)}'.",
            )
        if result:
            return flow
    if element.default_flow is not None:
        return element.default_flow
    raise MappingFailure(
        "CONDITION_ERROR",
        "Expected at least one condition to evaluate to true, or to have a default flow",
    )
