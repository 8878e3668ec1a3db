"""Small DMN documents for the tests, written the way the Camunda Modeler writes them."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

DMN13 = "https://www.omg.org/spec/DMN/20191111/MODEL/"
DMN12 = "http://www.omg.org/spec/DMN/20180521/MODEL/"
DMN11 = "http://www.omg.org/spec/DMN/20151101/dmn.xsd"


def definitions(
    *decisions: str, namespace: str = DMN13, definitions_id: str = "drg", name: str = "DRG"
) -> bytes:
    body = "\n".join(decisions)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<definitions xmlns="{namespace}" id="{definitions_id}" name="{name}" '
        f'namespace="http://camunda.org/schema/1.0/dmn">\n{body}\n</definitions>\n'
    ).encode()


def _requirements(requires: Sequence[str]) -> str:
    return "".join(
        f'<informationRequirement id="req_{index}"><requiredDecision href="#{required}"/></informationRequirement>'
        for index, required in enumerate(requires)
    )


def table(
    decision_id: str = "d",
    *,
    inputs: Sequence[str] = ("x",),
    outputs: Sequence[tuple[str, str | None]] = (("out", None),),
    rules: Sequence[tuple[Sequence[str], Sequence[str]]] = (),
    hit_policy: str | None = None,
    aggregation: str | None = None,
    requires: Sequence[str] = (),
    output_values: dict[str, str] | None = None,
    defaults: dict[str, str] | None = None,
    variable: str | None = None,
    input_labels: Sequence[str | None] | None = None,
) -> str:
    """A decision table: `inputs` are input expressions, `outputs` (name, label), `rules`
    (input entries, output entries)."""
    attributes = ""
    if hit_policy:
        attributes += f' hitPolicy="{hit_policy}"'
    if aggregation:
        attributes += f' aggregation="{aggregation}"'
    parts = [f'<decision id="{decision_id}" name="Decision {decision_id}">']
    if variable:
        parts.append(f'<variable name="{variable}"/>')
    parts.append(_requirements(requires))
    parts.append(f'<decisionTable id="{decision_id}_table"{attributes}>')
    labels = input_labels or [f"Input {index}" for index in range(1, len(inputs) + 1)]
    for index, (expression, label) in enumerate(zip(inputs, labels, strict=True), start=1):
        label_attribute = f" label={quoteattr(label)}" if label is not None else ""
        parts.append(
            f'<input id="{decision_id}_in{index}"{label_attribute}><inputExpression id="{decision_id}_ie{index}">'
            f"<text>{escape(expression)}</text></inputExpression></input>"
        )
    for index, (name, label) in enumerate(outputs, start=1):
        name_attribute = f' name="{name}"' if name else ""
        label_attribute = f" label={quoteattr(label)}" if label else ""
        inner = ""
        if output_values and name in output_values:
            inner += f"<outputValues><text>{escape(output_values[name])}</text></outputValues>"
        if defaults and name in defaults:
            inner += f"<defaultOutputEntry><text>{escape(defaults[name])}</text></defaultOutputEntry>"
        parts.append(
            f'<output id="{decision_id}_out{index}"{name_attribute}{label_attribute}>{inner}</output>'
        )
    for rule_index, (input_entries, output_entries) in enumerate(rules, start=1):
        parts.append(f'<rule id="{decision_id}_r{rule_index}">')
        parts.extend(f"<inputEntry><text>{escape(text)}</text></inputEntry>" for text in input_entries)
        parts.extend(f"<outputEntry><text>{escape(text)}</text></outputEntry>" for text in output_entries)
        parts.append("</rule>")
    parts.append("</decisionTable></decision>")
    return "".join(parts)


def literal(
    decision_id: str,
    text: str,
    *,
    variable: str | None = None,
    type_ref: str | None = None,
    requires: Sequence[str] = (),
) -> str:
    variable_xml = ""
    if variable or type_ref:
        type_attribute = f' typeRef="{type_ref}"' if type_ref else ""
        variable_xml = f'<variable name="{variable or decision_id}"{type_attribute}/>'
    return (
        f'<decision id="{decision_id}" name="Literal {decision_id}">{variable_xml}{_requirements(requires)}'
        f'<literalExpression id="{decision_id}_le"><text>{escape(text)}</text></literalExpression></decision>'
    )
