"""Boxed contexts, lists and relations (decision types CONTEXT, LIST, RELATION), nested too."""

from __future__ import annotations

import pytest

from engine.dmn import DmnParseError, evaluate_decision, parse_dmn
from tests.engine_dmn.builder import definitions, literal

CONTEXT = """<decision id="quote" name="Quote"><variable name="quote"/>
<context id="quote_context">
  <contextEntry><variable name="base"/><literalExpression><text>parts * 10</text></literalExpression></contextEntry>
  <contextEntry><variable name="rush"/><decisionTable hitPolicy="FIRST">
      <input id="urgent_in" label="Urgent"><inputExpression><text>urgent</text></inputExpression></input>
      <output id="factor_out" name="factor"/>
      <rule id="r1"><inputEntry><text>true</text></inputEntry><outputEntry><text>1.5</text></outputEntry></rule>
      <rule id="r2"><inputEntry><text>-</text></inputEntry><outputEntry><text>1</text></outputEntry></rule>
  </decisionTable></contextEntry>
  <contextEntry><variable name="total"/><literalExpression><text>base * rush</text></literalExpression></contextEntry>
</context></decision>"""

CONTEXT_WITH_RESULT = """<decision id="total_only" name="Total only">
<context>
  <contextEntry><variable name="base"/><literalExpression><text>parts * 10</text></literalExpression></contextEntry>
  <contextEntry><literalExpression><text>base + 5</text></literalExpression></contextEntry>
</context></decision>"""

LIST = """<decision id="checks" name="Checks"><list>
  <literalExpression><text>"cpu"</text></literalExpression>
  <literalExpression><text>if parts > 2 then "memory" else null</text></literalExpression>
  <list><literalExpression><text>1</text></literalExpression><literalExpression><text>2</text></literalExpression></list>
</list></decision>"""

RELATION = """<decision id="vendors" name="Vendors"><relation>
  <column name="vendor"/><column name="interface"/>
  <row><literalExpression><text>"dell"</text></literalExpression><literalExpression><text>"idrac"</text></literalExpression></row>
  <row><literalExpression><text>"hp"</text></literalExpression><literalExpression><text>"ilo"</text></literalExpression></row>
</relation></decision>"""


def test_a_boxed_context_evaluates_its_entries_in_order() -> None:
    drg = parse_dmn(definitions(CONTEXT, CONTEXT_WITH_RESULT))
    result = evaluate_decision(drg, "quote", {"parts": 3, "urgent": True})
    assert result.output == {"base": 30, "rush": 1.5, "total": 45}
    [evaluated] = result.evaluated_decisions
    assert evaluated.decision_type == "CONTEXT"
    assert evaluated.decision_output == {"base": 30, "rush": 1.5, "total": 45}
    # the nested decision table is not audited on its own (dmn-scala audits the decision's logic)
    assert evaluated.matched_rules == () and evaluated.evaluated_inputs == ()
    assert evaluate_decision(drg, "quote", {"parts": 1, "urgent": False}).output == {
        "base": 10,
        "rush": 1,
        "total": 10,
    }
    # a last entry without a variable is the result
    assert evaluate_decision(drg, "total_only", {"parts": 2}).output == 25


def test_a_boxed_list_and_a_relation() -> None:
    drg = parse_dmn(definitions(LIST, RELATION))
    listed = evaluate_decision(drg, "checks", {"parts": 3})
    assert listed.output == ["cpu", "memory", [1, 2]]
    assert listed.evaluated_decisions[0].decision_type == "LIST"
    relation = evaluate_decision(drg, "vendors", {})
    assert relation.output == [{"vendor": "dell", "interface": "idrac"}, {"vendor": "hp", "interface": "ilo"}]
    assert relation.evaluated_decisions[0].decision_type == "RELATION"


def test_boxed_results_feed_requiring_decisions() -> None:
    drg = parse_dmn(
        definitions(
            RELATION,
            literal("dell_interface", 'vendors[vendor = "dell"].interface[1]', requires=["vendors"]),
        )
    )
    result = evaluate_decision(drg, "dell_interface", {})
    assert result.output == "idrac"
    assert [e.decision_type for e in result.evaluated_decisions] == ["RELATION", "LITERAL_EXPRESSION"]


def test_a_failure_inside_a_boxed_expression_fails_its_decision() -> None:
    failing = CONTEXT.replace("parts * 10", 'assert(parts, parts > 0, "parts must be positive")')
    drg = parse_dmn(definitions(failing))
    result = evaluate_decision(drg, "quote", {"parts": 0, "urgent": True})
    assert result.is_failure and result.failed_decision_id == "quote"
    assert result.failure_message is not None and "parts must be positive" in result.failure_message
    assert result.evaluated_decisions[0].decision_output is None


def test_malformed_boxed_expressions_are_refused() -> None:
    short_row = RELATION.replace('<literalExpression><text>"ilo"</text></literalExpression></row>', "</row>")
    with pytest.raises(DmnParseError) as raised:
        parse_dmn(definitions(short_row))
    assert raised.value.failures == ["expected row with '2' elements but found '1'"]
    misplaced = (
        '<decision id="c" name="C"><context>'
        "<contextEntry><literalExpression><text>1</text></literalExpression></contextEntry>"
        '<contextEntry><variable name="a"/><literalExpression><text>2</text></literalExpression></contextEntry>'
        "</context></decision>"
    )
    with pytest.raises(DmnParseError) as raised:
        parse_dmn(definitions(misplaced))
    assert raised.value.failures == ["decision 'c': only the last context entry may have no variable"]
    bad_feel = LIST.replace('"cpu"', "1 +")
    with pytest.raises(DmnParseError) as raised:
        parse_dmn(definitions(bad_feel))
    assert raised.value.failures[0].startswith("FEEL expression: failed to parse expression '1 +'")
