"""Evaluate a decision of a parsed DRG, producing what Zeebe's DECISION_EVALUATION record carries.

Semantics follow dmn-scala as embedded in Zeebe (DmnScalaDecisionEngine + dmn-scala's
DecisionEvaluator/DecisionTableEvaluator), reference/zeebe-protocol.md §3.4:

* Required decisions are evaluated first, depth-first in `informationRequirement` order; a
  decision sees the input variables plus the results of the decisions it requires directly,
  each under its result name (the `variable` name, else the decision id).
* Decision table: all input expressions, then the rules whose every input entry is true (FIRST
  stops at the first), then the output entries of the matched rules, then the hit policy.
  No match gives the outputs' default values (`defaultOutputEntry`), or null. One output gives
  the value itself, several give a context keyed by output name; RULE ORDER, OUTPUT ORDER and
  COLLECT give a list (COLLECT with SUM/MIN/MAX/COUNT a number).
* Boxed context: entries in order, each seeing those before it; the result is the last entry
  without a variable, else the context. Boxed list: the list of its items. Relation: one context
  per row. Anything may nest; only a decision's own logic is audited, as in dmn-scala.
* Business knowledge models a decision requires are FEEL functions under their names (called
  from FEEL or by an invocation); a model sees its parameters and the models it requires only.
  At most MAX_KNOWLEDGE_MODEL_CALLS calls per evaluation (models calling each other twice down
  a chain would otherwise take exponential time).
* Every evaluated decision is audited in evaluation order: its output, its inputs, and for a
  table the matched rules with their outputs (Zeebe `evaluatedDecisions`). A decision that
  fails is audited too, with a null output (dmn-scala audits `ValError`, which Zeebe writes as
  nil), so Zeebe's `failedDecisionId` - the last audited decision - names it.
* Failure message: `Expected to evaluate decision '<requested id>', but <reason>` with dmn-scala's
  reasons (`multiple values aren't allowed for UNIQUE hit policy. found: '...'`, ...). The
  `found:` part quotes values the way Scala prints them (`List(Map(out -> ValString(a)), ...)`).

Two deliberate choices where dmn-scala's behaviour would hurt:

* An input entry that yields null (feel-scala 1.17+ makes a comparison of incomparable values,
  such as `< 10` against a string or null, null with a warning) does not match, instead of
  failing the whole evaluation with `input entry must return true or false`.
* A decision required by several others (a diamond) is evaluated and audited once per
  evaluation, where dmn-scala re-evaluates it along every path (exponential on a hostile DRG).

Nothing here raises: any failure, including an internal defect or absurdly nested variables,
becomes a failed `DecisionEvaluationResult`.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.dmn.model import (
    Aggregation,
    BoxedContext,
    BoxedList,
    Decision,
    DecisionLogic,
    DecisionRequirementsGraph,
    DecisionTable,
    HitPolicy,
    Invocation,
    KnowledgeModel,
    LiteralExpression,
    Rule,
    TableOutput,
)
from engine.feel import FeelError, FeelEvaluationError, evaluate_raw, to_json_value

# FEEL's function value (not in engine.feel's public API): a business knowledge model is called
# from FEEL like any function, so it must be one.
from engine.feel.values import FeelFunction


@dataclass(frozen=True, slots=True)
class EvaluatedInput:
    input_id: str
    input_name: str
    #: JSON-compatible value (the record carries its JSON text).
    input_value: Any


@dataclass(frozen=True, slots=True)
class EvaluatedOutput:
    output_id: str
    output_name: str
    output_value: Any


@dataclass(frozen=True, slots=True)
class MatchedRule:
    rule_id: str
    rule_index: int
    evaluated_outputs: tuple[EvaluatedOutput, ...]


@dataclass(frozen=True, slots=True)
class EvaluatedDecision:
    decision_id: str
    decision_name: str
    decision_type: str
    decision_output: Any
    evaluated_inputs: tuple[EvaluatedInput, ...]
    matched_rules: tuple[MatchedRule, ...]


@dataclass(frozen=True, slots=True)
class DecisionEvaluationResult:
    """The outcome of one evaluation. `output` is JSON-compatible (None when failed)."""

    decision_id: str
    output: Any
    evaluated_decisions: tuple[EvaluatedDecision, ...]
    failure_message: str | None = None
    failed_decision_id: str | None = None

    @property
    def is_failure(self) -> bool:
        return self.failure_message is not None


def json_text(value: Any) -> str:
    """A JSON-compatible value as the compact JSON text Zeebe writes (`{"a":1}`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Overlay(Mapping[str, Any]):
    """The input variables with the required decisions' results on top (a result shadows a
    variable of the same name, as in dmn-scala), without copying the variables."""

    __slots__ = ("base", "top")

    def __init__(self, top: dict[str, Any], base: Mapping[str, Any]) -> None:
        self.top, self.base = top, base

    def __getitem__(self, name: str) -> Any:
        if name in self.top:
            return self.top[name]
        return self.base[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.top
        yield from (name for name in self.base if name not in self.top)

    def __len__(self) -> int:
        return len(self.top) + sum(1 for name in self.base if name not in self.top)


class _Failure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def evaluate_decision(
    drg: DecisionRequirementsGraph, decision_id: str, variables: Mapping[str, Any]
) -> DecisionEvaluationResult:
    """Evaluate `decision_id` (and the decisions it requires) with the given JSON variables."""
    audit: list[EvaluatedDecision] = []
    if decision_id not in drg.decisions:
        return DecisionEvaluationResult(
            decision_id=decision_id,
            output=None,
            evaluated_decisions=(),
            failure_message=f"Expected to evaluate decision '{decision_id}', but no decision found with id '{decision_id}'",
            failed_decision_id=decision_id,
        )
    try:
        results: dict[str, Any] = {}
        value: Any = None
        calls = _CallBudget()
        for decision in _evaluation_order(drg, decision_id):
            # the required knowledge models as functions, then the required decisions' results
            required_results = _functions(drg, decision.required_knowledge, calls)
            required_results.update(
                (drg.decisions[required].result_name, results[required])
                for required in decision.required_decisions
            )
            scope = _Overlay(required_results, variables) if required_results else variables
            value = _evaluate(decision, scope, audit)
            results[decision.id] = value
        return DecisionEvaluationResult(
            decision_id=decision_id, output=to_json_value(value), evaluated_decisions=tuple(audit)
        )
    except _Failure as failure:
        reason = failure.reason
    except RecursionError:
        reason = "the variables are nested too deeply to evaluate"
    except Exception as error:  # a defect must fail the evaluation, never the engine
        reason = f"the evaluation failed with an internal error: {type(error).__name__}: {error}"
    return DecisionEvaluationResult(
        decision_id=decision_id,
        output=None,
        evaluated_decisions=tuple(audit),
        failure_message=f"Expected to evaluate decision '{decision_id}', but {reason}",
        # Zeebe: the last evaluated decision is the one that failed, else the requested one
        failed_decision_id=audit[-1].decision_id if audit else decision_id,
    )


def _evaluation_order(drg: DecisionRequirementsGraph, decision_id: str) -> Iterator[Decision]:
    """Post-order over the required decisions, each once (iterative: chains may be long;
    the parser has rejected cycles)."""
    done: set[str] = set()
    stack: list[tuple[Decision, Iterator[str]]] = []
    root = drg.decisions[decision_id]
    stack.append((root, iter(root.required_decisions)))
    while stack:
        decision, pending = stack[-1]
        following = next(pending, None)
        if following is None:
            stack.pop()
            if decision.id not in done:
                done.add(decision.id)
                yield decision
        elif following not in done:
            required = drg.decisions[following]
            stack.append((required, iter(required.required_decisions)))


def _evaluate(decision: Decision, scope: Mapping[str, Any], audit: list[EvaluatedDecision]) -> Any:
    logic = decision.logic
    if isinstance(logic, DecisionTable):
        value = _evaluate_table(decision, logic, scope, audit)
    else:
        try:
            value = _value_of(logic, scope)
        except FeelError as error:
            _audit(audit, decision, None)
            raise _Failure(str(error)) from None
        except _Failure:
            _audit(audit, decision, None)
            raise
        _audit(audit, decision, to_json_value(value))
    if decision.result_type:
        _check_type(value, decision.result_type)
    return value


def _value_of(logic: DecisionLogic, scope: Mapping[str, Any]) -> Any:
    """The value of a (possibly nested) boxed expression. Only a decision's own logic is
    audited (dmn-scala audits the logic of the decision being evaluated, not what it nests)."""
    if isinstance(logic, LiteralExpression):
        return logic.expression.evaluate_raw(scope)
    if isinstance(logic, DecisionTable):
        return _evaluate_table(None, logic, scope, None)
    if isinstance(logic, BoxedContext):
        entries: dict[str, Any] = {}
        inner = _Overlay(entries, scope)  # each entry sees the entries before it
        for name, entry in logic.entries:
            entries[name] = _value_of(entry, inner)
        return _value_of(logic.result, inner) if logic.result is not None else entries
    if isinstance(logic, BoxedList):
        return [_value_of(item, scope) for item in logic.items]
    if isinstance(logic, Invocation):
        function = scope.get(logic.knowledge_model)
        if not isinstance(function, FeelFunction):
            raise _Failure(f"no BKM found with name '{logic.knowledge_model}'")
        arguments = {name: _value_of(binding, scope) for name, binding in logic.bindings}
        try:
            return function.invoke([arguments.get(parameter) for parameter in function.parameters])
        except FeelEvaluationError as error:
            raise _Failure(str(error)) from None
    return [
        {column: _value_of(cell, scope) for column, cell in zip(logic.columns, row, strict=True)}
        for row in logic.rows
    ]


class _CallBudget:
    """Business knowledge model calls left in one evaluation: BKMs calling each other twice
    over a long chain would otherwise take exponential time (the FEEL budget is per call)."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_KNOWLEDGE_MODEL_CALLS


#: Most business knowledge model invocations in one evaluation.
MAX_KNOWLEDGE_MODEL_CALLS = 10_000


def _functions(
    drg: DecisionRequirementsGraph, knowledge_ids: tuple[str, ...], calls: _CallBudget
) -> dict[str, Any]:
    """The required business knowledge models as FEEL functions, by name."""
    functions: dict[str, Any] = {}
    for knowledge_id in knowledge_ids:
        model = drg.knowledge_models[knowledge_id]
        functions[model.name] = _function(drg, model, calls)
    return functions


def _function(drg: DecisionRequirementsGraph, model: KnowledgeModel, calls: _CallBudget) -> FeelFunction:
    def invoke(arguments: list[Any]) -> Any:
        calls.left -= 1
        if calls.left < 0:
            raise FeelEvaluationError(
                f"the evaluation called business knowledge models more than {MAX_KNOWLEDGE_MODEL_CALLS} times"
            )
        if model.body is None:
            return None
        # a knowledge model sees its parameters and the models it requires, not the caller's variables
        scope = _functions(drg, model.required_knowledge, calls)
        scope.update(zip(model.parameters, arguments, strict=False))
        try:
            return _value_of(model.body, scope)
        except _Failure as failure:
            raise FeelEvaluationError(failure.reason) from None

    return FeelFunction(model.name, list(model.parameters), invoke)


def _audit(
    audit: list[EvaluatedDecision] | None,
    decision: Decision | None,
    output: Any,
    inputs: tuple[EvaluatedInput, ...] = (),
    rules: tuple[MatchedRule, ...] = (),
) -> None:
    if audit is None or decision is None:  # a table nested in a boxed expression
        return
    audit.append(
        EvaluatedDecision(
            decision_id=decision.id,
            decision_name=decision.name,
            decision_type=decision.decision_type.value,
            decision_output=output,
            evaluated_inputs=inputs,
            matched_rules=rules,
        )
    )


def _evaluate_table(
    decision: Decision | None,
    table: DecisionTable,
    scope: Mapping[str, Any],
    audit: list[EvaluatedDecision] | None,
) -> Any:
    input_values: list[Any] = []
    for table_input in table.inputs:
        try:
            input_values.append(table_input.expression.evaluate_raw(scope))
        except FeelError as error:
            _audit(audit, decision, None)
            raise _Failure(str(error)) from None
    evaluated_inputs = tuple(
        EvaluatedInput(table_input.id, table_input.name, to_json_value(value))
        for table_input, value in zip(table.inputs, input_values, strict=True)
    )

    matched: list[Rule] = []
    for rule in table.rules:
        try:
            if _rule_matches(rule, input_values, scope):
                matched.append(rule)
                if table.hit_policy is HitPolicy.FIRST:
                    break
        except FeelError as error:
            _audit(audit, decision, None, evaluated_inputs)
            raise _Failure(str(error)) from None

    if not matched:
        try:
            value = _default_output(table, scope)
        except FeelError as error:
            _audit(audit, decision, None, evaluated_inputs)
            raise _Failure(str(error)) from None
        _audit(audit, decision, to_json_value(value), evaluated_inputs)
        return value

    rows: list[list[tuple[TableOutput, Any]]] = []
    for rule in matched:
        row: list[tuple[TableOutput, Any]] = []
        for output, entry in zip(table.outputs, rule.output_entries, strict=True):
            try:
                value = entry.expression.evaluate_raw(scope) if entry.expression is not None else None
            except FeelError as error:
                _audit(audit, decision, None, evaluated_inputs)
                raise _Failure(str(error)) from None
            row.append((output, value))
        rows.append(row)
    matched_rules = tuple(
        MatchedRule(
            rule.id,
            rule.index,
            tuple(
                EvaluatedOutput(output.id, output.display_name, to_json_value(value)) for output, value in row
            ),
        )
        for rule, row in zip(matched, rows, strict=True)
    )
    try:
        result = _apply_hit_policy(table, rows)
    except _Failure:
        _audit(audit, decision, None, evaluated_inputs, matched_rules)
        raise
    _audit(audit, decision, to_json_value(result), evaluated_inputs, matched_rules)
    return result


def _rule_matches(rule: Rule, input_values: list[Any], scope: Mapping[str, Any]) -> bool:
    for entry, value in zip(rule.input_entries, input_values, strict=True):
        if entry.tests is None:
            continue
        # null (not comparable) does not match; see the module docstring
        if entry.tests.matches(value, scope) is not True:
            return False
    return True


def _default_output(table: DecisionTable, scope: Mapping[str, Any]) -> Any:
    values = {
        output.name: output.default_value.evaluate_raw(scope)
        for output in table.outputs
        if output.default_value is not None
    }
    if not values:
        return None
    if len(values) == 1:
        return next(iter(values.values()))
    return values


# hit policies ---------------------------------------------------------------------------------

Row = list[tuple[TableOutput, Any]]


def _apply_hit_policy(table: DecisionTable, rows: list[Row]) -> Any:
    policy = table.hit_policy
    if policy is HitPolicy.FIRST:
        return _single(rows)
    if policy is HitPolicy.UNIQUE:
        if len(rows) > 1:
            raise _Failure(
                f"multiple values aren't allowed for UNIQUE hit policy. found: '{_scala_rows(rows)}'"
            )
        return _single(rows)
    if policy is HitPolicy.ANY:
        distinct: list[Row] = []
        for row in rows:
            if not any(_same_row(row, other) for other in distinct):
                distinct.append(row)
        if len(distinct) > 1:
            raise _Failure(
                f"different values aren't allowed for ANY hit policy. found: '{_scala_rows(distinct)}'"
            )
        return _single(rows)
    if policy is HitPolicy.PRIORITY:
        return _single(_sort_by_priority(table, rows))
    if policy is HitPolicy.OUTPUT_ORDER:
        return _multiple(_sort_by_priority(table, rows))
    if policy is HitPolicy.RULE_ORDER:
        return _multiple(rows)
    # COLLECT
    aggregation = table.aggregation
    if aggregation is None:
        return _multiple(rows)
    if aggregation is Aggregation.COUNT:
        return Decimal(len(rows))
    numbers = _single_numbers(rows)
    with decimal.localcontext() as context:
        context.prec = 34  # feel-scala's BigDecimal arithmetic (DECIMAL128)
        if aggregation is Aggregation.SUM:
            return sum(numbers, Decimal(0))
        if aggregation is Aggregation.MIN:
            return min(numbers)
        return max(numbers)


def _as_value(row: Row) -> Any:
    if len(row) == 1:
        return row[0][1]
    return {output.name: value for output, value in row}


def _single(rows: list[Row]) -> Any:
    return _as_value(rows[0]) if rows else None


def _multiple(rows: list[Row]) -> Any:
    if not rows:
        return None
    return [_as_value(row) for row in rows]


def _single_numbers(rows: list[Row]) -> list[Decimal]:
    numbers = []
    for row in rows:
        value = row[0][1]
        if type(value) is not Decimal:
            raise _Failure(f"expected number but found '{_scala(value)}'")
        numbers.append(value)
    return numbers


def _sort_by_priority(table: DecisionTable, rows: list[Row]) -> list[Row]:
    """dmn-scala's sortByPriority, quirks included: each output contributes the index of its
    value in that output's `outputValues` (or `_` when absent) as text, the texts are joined
    and the rows sorted by that string, stably. (So index 10 sorts before index 2; tables
    with more than ten output values rank as they do in Zeebe.)"""
    priorities = []
    for output in table.outputs:
        ranks: dict[str, int] = {}
        for index, value in enumerate(output.priority_values):
            ranks[value] = index  # a repeated value keeps its last index, as Scala's toMap
        priorities.append(ranks)

    def key(row: Row) -> str:
        parts = []
        for (_output, value), ranks in zip(row, priorities, strict=True):
            if type(value) is str:
                rank = ranks.get(value)
            elif type(value) is Decimal:
                rank = ranks.get(str(value))
            else:
                rank = None
            parts.append("_" if rank is None else str(rank))
        return "".join(parts)

    return sorted(rows, key=key)


def _same_row(left: Row, right: Row) -> bool:
    return len(left) == len(right) and all(
        a_output.name == b_output.name and _same(a, b)
        for (a_output, a), (b_output, b) in zip(left, right, strict=True)
    )


def _same(left: Any, right: Any) -> bool:
    """Value equality as Scala's `distinct` sees FEEL values (1 = 1.0; true is not 1)."""
    if type(left) is not type(right):
        return False
    if type(left) is list:
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if type(left) is dict:
        return left.keys() == right.keys() and all(_same(left[key], right[key]) for key in left)
    try:
        return bool(left == right)
    except TypeError:
        return False


# type check of the decision result (dmn-scala TypeChecker) --------------------------------------

_TYPE_TESTS = {
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "time": "time",
    "date": "date",
    "dateTime": "date and time",
    "dayTimeDuration": "days and time duration",
    "yearMonthDuration": "years and months duration",
}


def _check_type(value: Any, type_ref: str) -> None:
    type_name = type_ref.replace("feel:", "")
    feel_type = _TYPE_TESTS.get(type_name)
    if value is None or feel_type is None:  # null passes; unknown types are not checked
        return
    if evaluate_raw(f"value instance of {feel_type}", {"value": value}) is not True:
        raise _Failure(f"expected '{type_name}' but found '{_scala(value)}'")


# Scala's rendering of values, for failure messages ------------------------------------------------


def _scala(value: Any) -> str:
    if value is None:
        return "ValNull"
    if type(value) is bool:
        return f"ValBoolean({'true' if value else 'false'})"
    if type(value) is Decimal:
        return f"ValNumber({value})"
    if type(value) is str:
        return f"ValString({value})"
    if type(value) is list:
        return "ValList(List(" + ", ".join(_scala(item) for item in value) + "))"
    if type(value) is dict:
        return "ValContext(Map(" + ", ".join(f"{key} -> {_scala(item)}" for key, item in value.items()) + "))"
    return f"Val({to_json_value(value)})"


def _scala_rows(rows: list[Row]) -> str:
    maps = (
        "Map(" + ", ".join(f"{output.name} -> {_scala(value)}" for output, value in row) + ")" for row in rows
    )
    return "List(" + ", ".join(maps) + ")"
