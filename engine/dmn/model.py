"""The parsed form of a DMN resource: a decision requirements graph (DRG) and its decisions.

Built by `engine.dmn.parser`, evaluated by `engine.dmn.evaluation`. Every FEEL text is compiled
once at deployment; the model is immutable and shared between evaluations.

Zeebe's names: the `definitions` element is the decision requirements graph (its id/name are
`decisionRequirementsId`/`decisionRequirementsName`), each `decision` becomes a DECISION record
(versioned per decision id by the deployment, not here).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from engine.feel import CompiledExpression, CompiledUnaryTests


class HitPolicy(enum.StrEnum):
    """DMN hit policies (the `hitPolicy` attribute; UNIQUE when absent)."""

    UNIQUE = "UNIQUE"
    FIRST = "FIRST"
    PRIORITY = "PRIORITY"
    ANY = "ANY"
    COLLECT = "COLLECT"
    RULE_ORDER = "RULE ORDER"
    OUTPUT_ORDER = "OUTPUT ORDER"


class Aggregation(enum.StrEnum):
    """COLLECT aggregations (the `aggregation` attribute; none means a list of the outputs)."""

    SUM = "SUM"
    MIN = "MIN"
    MAX = "MAX"
    COUNT = "COUNT"


class DecisionType(enum.StrEnum):
    """`decisionType` of an evaluated decision (Zeebe io.camunda.zeebe.dmn.DecisionType)."""

    DECISION_TABLE = "DECISION_TABLE"
    LITERAL_EXPRESSION = "LITERAL_EXPRESSION"
    CONTEXT = "CONTEXT"
    LIST = "LIST"
    RELATION = "RELATION"
    INVOCATION = "INVOCATION"


@dataclass(frozen=True, slots=True)
class TableInput:
    """An input column: `inputExpression` evaluated once per evaluation."""

    id: str
    label: str | None
    expression_text: str
    expression: CompiledExpression

    @property
    def name(self) -> str:
        # Zeebe (EvaluatedDmnScalaInput): the label, else the expression text cut to 30 characters.
        return self.label if self.label is not None else self.expression_text[:30]


@dataclass(frozen=True, slots=True)
class TableOutput:
    """An output column. `name` keys the output in a multi-output result context."""

    id: str
    name: str
    label: str | None
    type_ref: str | None
    #: The `outputValues` text split into the values PRIORITY / OUTPUT ORDER rank by.
    priority_values: tuple[str, ...]
    default_value: CompiledExpression | None

    @property
    def display_name(self) -> str:
        # Zeebe (EvaluatedDmnScalaOutput): "Just like the Modeler, we favor the label over the name".
        return self.label if self.label is not None else self.name


@dataclass(frozen=True, slots=True)
class InputEntry:
    """One cell of a rule's input side; `tests` is None for `-` or an empty cell (matches all)."""

    text: str
    tests: CompiledUnaryTests | None


@dataclass(frozen=True, slots=True)
class OutputEntry:
    """One cell of a rule's output side; `expression` is None for an empty cell (null)."""

    text: str
    expression: CompiledExpression | None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    #: 1-based position in the table (Zeebe's `ruleIndex`).
    index: int
    input_entries: tuple[InputEntry, ...]
    output_entries: tuple[OutputEntry, ...]


@dataclass(frozen=True, slots=True)
class DecisionTable:
    id: str | None
    hit_policy: HitPolicy
    aggregation: Aggregation | None
    inputs: tuple[TableInput, ...]
    outputs: tuple[TableOutput, ...]
    rules: tuple[Rule, ...]

    decision_type = DecisionType.DECISION_TABLE


@dataclass(frozen=True, slots=True)
class LiteralExpression:
    id: str | None
    text: str
    expression: CompiledExpression

    decision_type = DecisionType.LITERAL_EXPRESSION


@dataclass(frozen=True, slots=True)
class BoxedContext:
    """`context`: entries evaluated in order, each seeing the ones before; the result is the
    final entry without a variable when there is one, else the context of all entries."""

    id: str | None
    entries: tuple[tuple[str, DecisionLogic], ...]
    result: DecisionLogic | None

    decision_type = DecisionType.CONTEXT


@dataclass(frozen=True, slots=True)
class BoxedList:
    """`list`: the list of its expressions' values."""

    id: str | None
    items: tuple[DecisionLogic, ...]

    decision_type = DecisionType.LIST


@dataclass(frozen=True, slots=True)
class Relation:
    """`relation`: a list of contexts, one per row, keyed by the column names."""

    id: str | None
    columns: tuple[str, ...]
    rows: tuple[tuple[DecisionLogic, ...], ...]

    decision_type = DecisionType.RELATION


@dataclass(frozen=True, slots=True)
class Invocation:
    """`invocation`: calls the business knowledge model named `knowledge_model` with each
    parameter bound to its binding's value (a parameter without binding is null)."""

    id: str | None
    knowledge_model: str
    bindings: tuple[tuple[str, DecisionLogic], ...]

    decision_type = DecisionType.INVOCATION


DecisionLogic = DecisionTable | LiteralExpression | BoxedContext | BoxedList | Relation | Invocation


@dataclass(frozen=True, slots=True)
class KnowledgeModel:
    """A business knowledge model: a function of its parameters. A decision that requires it
    (knowledgeRequirement) calls it by name, in FEEL (`name(a, b)`) or with an invocation."""

    id: str
    name: str
    parameters: tuple[str, ...]
    #: None without `encapsulatedLogic` (the function returns null, as in dmn-scala).
    body: DecisionLogic | None
    #: Ids of the knowledge models its body may call.
    required_knowledge: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    id: str
    name: str
    logic: DecisionLogic
    #: The variable a requiring decision sees this decision's result under: the `variable`
    #: name, else the decision id (dmn-scala DmnParser).
    result_name: str
    #: `variable typeRef`: the result is type-checked against it (dmn-scala TypeChecker).
    result_type: str | None
    #: Ids of the decisions this one requires, in document order (informationRequirement).
    required_decisions: tuple[str, ...]
    #: Ids of the business knowledge models it may call (knowledgeRequirement).
    required_knowledge: tuple[str, ...] = ()

    @property
    def decision_type(self) -> DecisionType:
        return self.logic.decision_type


@dataclass(frozen=True, slots=True)
class DecisionRequirementsGraph:
    """A parsed `definitions` element."""

    id: str
    name: str
    namespace: str
    #: Decisions by id, in document order (the order Zeebe writes DECISION records in).
    decisions: dict[str, Decision] = field(default_factory=dict)
    #: Business knowledge models by id.
    knowledge_models: dict[str, KnowledgeModel] = field(default_factory=dict)
