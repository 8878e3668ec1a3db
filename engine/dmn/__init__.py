"""DMN decisions for the embedded Zeebe-compatible engine (no Django).

`parse_dmn(bytes)` reads a DMN 1.1-1.5 resource into a `DecisionRequirementsGraph` (decision
tables with every hit policy Zeebe supports, literal expressions, boxed contexts, lists,
relations and invocations, business knowledge models, required decisions), FEEL compiled once
by `engine.feel`. `evaluate_decision(drg, decision_id, variables)` evaluates one
decision and its required decisions and returns what Zeebe's DECISION_EVALUATION record
carries (reference/zeebe-protocol.md §3.4): the output, every evaluated decision with its
inputs and matched rules, or the failure message and failed decision id.

Behaviour follows dmn-scala as embedded in Zeebe; the modules say where and why it differs.
Deployment (versions, keys, records) and the EvaluateDecision RPC live in the engine's
processing layer, not here.
"""

from __future__ import annotations

from engine.dmn.errors import DmnParseError
from engine.dmn.evaluation import (
    DecisionEvaluationResult,
    EvaluatedDecision,
    EvaluatedInput,
    EvaluatedOutput,
    MatchedRule,
    evaluate_decision,
    json_text,
)
from engine.dmn.model import (
    Aggregation,
    Decision,
    DecisionRequirementsGraph,
    DecisionTable,
    DecisionType,
    HitPolicy,
    LiteralExpression,
)
from engine.dmn.parser import parse_dmn

__all__ = [
    "Aggregation",
    "Decision",
    "DecisionEvaluationResult",
    "DecisionRequirementsGraph",
    "DecisionTable",
    "DecisionType",
    "DmnParseError",
    "EvaluatedDecision",
    "EvaluatedInput",
    "EvaluatedOutput",
    "HitPolicy",
    "LiteralExpression",
    "MatchedRule",
    "evaluate_decision",
    "json_text",
    "parse_dmn",
]
