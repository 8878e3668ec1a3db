"""Business rule tasks: a DMN decision (zeebe:calledDecision) evaluated on activation, or,
without one, a job like a service task.

Zeebe's BusinessRuleTaskProcessor + BpmnDecisionBehavior (reference §5.1, §5.2): input mappings,
then the decision id (static or FEEL) is looked up (latest version) and evaluated with the
variables visible from the task; DECISION_EVALUATION EVALUATED or FAILED is written with the
task's process data. The result goes to `resultVariable` as the completion's variables: without
output mappings it is propagated to the parent scopes, with output mappings it becomes a local
variable the mappings read (Zeebe's event-trigger route). Failures are incidents:
CALLED_DECISION_ERROR for an unknown decision id, DECISION_EVALUATION_ERROR with the
evaluation's message; resolving the incident evaluates again.
"""

from __future__ import annotations

from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.decisions import evaluate_deployed_decision
from engine.processing.expressions import evaluate_string
from engine.processing.registry import behavior, behavior_for
from engine.processing.state import ElementInstance
from engine.processing.transitions import BaseBehavior, queue_complete
from engine.processing.variables import apply_input_mappings


@behavior("BUSINESS_RULE_TASK")
class BusinessRuleTaskBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if element.called_decision_id is None:
            # job-based: exactly what a service task does (looked up, not imported: element
            # behaviours meet only in the registry)
            behavior_for("SERVICE_TASK").activate(ctx, instance, element)
            return
        apply_input_mappings(ctx, instance, element)
        variables = ctx.state.visible_variables(instance.key)
        decision_id = evaluate_string(element.called_decision_id, variables, "EXTRACT_VALUE_ERROR")
        decision = ctx.state.decision_state.latest_decision(decision_id)
        if decision is None:
            raise MappingFailure(
                "CALLED_DECISION_ERROR",
                f"Expected to evaluate decision '{decision_id}', but no decision found for id '{decision_id}'",
            )
        evaluation = evaluate_deployed_decision(
            ctx,
            decision,
            variables,
            process={
                "processDefinitionKey": instance.process_definition_key,
                "bpmnProcessId": instance.bpmn_process_id,
                "processInstanceKey": instance.process_instance_key,
                "elementInstanceKey": instance.key,
                "elementId": instance.element_id,
            },
        )
        if evaluation.result.is_failure:
            raise MappingFailure("DECISION_EVALUATION_ERROR", evaluation.result.failure_message or "")
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        queue_complete(ctx, instance.key, {element.result_variable: evaluation.result.output})

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if element.called_decision_id is None:
            behavior_for("SERVICE_TASK").complete(ctx, instance, element)
            return
        super().complete(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        if element.called_decision_id is None:
            behavior_for("SERVICE_TASK").terminate(ctx, instance, element)
