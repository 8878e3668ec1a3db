"""DECISION_EVALUATION EVALUATE: the EvaluateDecision RPC (reference §1.2, §1.3).

Zeebe's DecisionEvaluationEvaluteProcessor: the decision is the latest version of
`decisionId` when one is given, else the decision with `decisionKey`; a failed evaluation is
not a rejection but a DECISION_EVALUATION FAILED event, answered like a success with
`failedDecisionId` and `failureMessage` set. An unknown decision is rejected with
INVALID_ARGUMENT and `Expected to evaluate decision '<id or key>', but no decision found for
id|key '...'` (Zeebe 8.5-8.7; pyzeebe recognises it by "but no decision found for").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.decisions import evaluate_deployed_decision
from engine.processing.registry import processor
from engine.records import INVALID_ARGUMENT


@dataclass(slots=True)
class EvaluateDecision:
    decision_id: str
    decision_key: int
    variables: dict[str, Any]


def evaluate_command_value(request: EvaluateDecision) -> dict[str, Any]:
    """The logged EVALUATE command: what the client asked (DecisionEvaluationRecord defaults)."""
    return {
        "decisionKey": request.decision_key,
        "decisionId": request.decision_id,
        "variables": request.variables,
        "tenantId": "<default>",
    }


@processor("DECISION_EVALUATION", "EVALUATE")
def evaluate(ctx: ProcessingContext, command: Command) -> dict[str, Any]:
    request = command.request
    assert isinstance(request, EvaluateDecision)
    store = ctx.state.decision_state
    if request.decision_id:
        decision = store.latest_decision(request.decision_id)
        if decision is None:
            raise Rejection(
                "EVALUATE",
                INVALID_ARGUMENT,
                f"Expected to evaluate decision '{request.decision_id}', but no decision found for id "
                f"'{request.decision_id}'",
            )
    elif request.decision_key > -1:
        decision = store.decisions.get(request.decision_key)
        if decision is None:
            raise Rejection(
                "EVALUATE",
                INVALID_ARGUMENT,
                f"Expected to evaluate decision '{request.decision_key}', but no decision found for key "
                f"'{request.decision_key}'",
            )
    else:
        raise Rejection(
            "EVALUATE",
            INVALID_ARGUMENT,
            "Expected either a decision id or a valid decision key, but none provided",
        )
    evaluation = evaluate_deployed_decision(ctx, decision, request.variables)
    return {"key": evaluation.key, "intent": evaluation.intent, "value": evaluation.value}
