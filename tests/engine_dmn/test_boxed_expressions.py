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


def knowledge_model(
    model_id: str, name: str, parameters: list[str], body: str, requires: tuple[str, ...] = ()
) -> str:
    formal = "".join(f'<formalParameter name="{parameter}"/>' for parameter in parameters)
    needs = "".join(
        f'<knowledgeRequirement><requiredKnowledge href="#{required}"/></knowledgeRequirement>'
        for required in requires
    )
    return (
        f'<businessKnowledgeModel id="{model_id}" name="{name}">{needs}'
        f"<encapsulatedLogic>{formal}{body}</encapsulatedLogic></businessKnowledgeModel>"
    )


DISCOUNT_TABLE = (
    '<decisionTable hitPolicy="FIRST"><input id="age_in"><inputExpression><text>age</text></inputExpression></input>'
    '<output id="rate_out" name="rate"/>'
    '<rule id="young"><inputEntry><text>&lt; 25</text></inputEntry><outputEntry><text>0.2</text></outputEntry></rule>'
    '<rule id="other"><inputEntry><text>-</text></inputEntry><outputEntry><text>0.05</text></outputEntry></rule>'
    "</decisionTable>"
)


def uses(decision_id: str, body: str, *knowledge: str) -> str:
    needs = "".join(
        f'<knowledgeRequirement><requiredKnowledge href="#{required}"/></knowledgeRequirement>'
        for required in knowledge
    )
    return f'<decision id="{decision_id}" name="{decision_id}">{needs}{body}</decision>'


def test_business_knowledge_models_are_called_from_feel_and_by_invocation() -> None:
    drg = parse_dmn(
        definitions(
            knowledge_model("bkm_discount", "discount", ["age"], DISCOUNT_TABLE),
            knowledge_model(
                "bkm_price",
                "price",
                ["amount", "age"],
                "<literalExpression><text>amount * (1 - discount(age))</text></literalExpression>",
                requires=("bkm_discount",),
            ),
            uses(
                "by_feel",
                "<literalExpression><text>price(100, customer.age)</text></literalExpression>",
                "bkm_price",
            ),
            uses(
                "by_invocation",
                "<invocation><literalExpression><text>price</text></literalExpression>"
                '<binding><parameter name="amount"/><literalExpression><text>total</text></literalExpression></binding>'
                '<binding><parameter name="age"/><literalExpression><text>customer.age</text></literalExpression></binding>'
                "</invocation>",
                "bkm_price",
            ),
        )
    )
    assert evaluate_decision(drg, "by_feel", {"customer": {"age": 20}}).output == 80
    assert evaluate_decision(drg, "by_feel", {"customer": {"age": 40}}).output == 95
    invoked = evaluate_decision(drg, "by_invocation", {"total": 200, "customer": {"age": 20}})
    assert invoked.output == 160
    assert invoked.evaluated_decisions[0].decision_type == "INVOCATION"


def test_a_failing_knowledge_model_fails_the_decision() -> None:
    drg = parse_dmn(
        definitions(
            knowledge_model(
                "bkm_check",
                "check",
                ["x"],
                '<literalExpression><text>assert(x, x > 0, "x must be positive")</text></literalExpression>',
            ),
            uses("checked", "<literalExpression><text>check(value)</text></literalExpression>", "bkm_check"),
        )
    )
    assert evaluate_decision(drg, "checked", {"value": 3}).output == 3
    failed = evaluate_decision(drg, "checked", {"value": -3})
    assert failed.is_failure and failed.failed_decision_id == "checked"
    assert failed.failure_message is not None and "x must be positive" in failed.failure_message


def test_knowledge_model_calls_are_bounded() -> None:
    # each model calls the next one twice: 2**30 calls without a bound
    models = [knowledge_model("k0", "f0", ["x"], "<literalExpression><text>x</text></literalExpression>")]
    models += [
        knowledge_model(
            f"k{i}",
            f"f{i}",
            ["x"],
            f"<literalExpression><text>f{i - 1}(x) + f{i - 1}(x)</text></literalExpression>",
            requires=(f"k{i - 1}",),
        )
        for i in range(1, 31)
    ]
    drg = parse_dmn(
        definitions(
            *models, uses("boom", "<literalExpression><text>f30(1)</text></literalExpression>", "k30")
        )
    )
    result = evaluate_decision(drg, "boom", {})
    assert result.is_failure
    assert result.failure_message is not None
    assert "called business knowledge models more than 10000 times" in result.failure_message


def test_knowledge_model_references_are_checked() -> None:
    with pytest.raises(DmnParseError) as cyclic:
        parse_dmn(
            definitions(
                knowledge_model(
                    "a", "a", [], "<literalExpression><text>b()</text></literalExpression>", requires=("b",)
                ),
                knowledge_model(
                    "b", "b", [], "<literalExpression><text>a()</text></literalExpression>", requires=("a",)
                ),
                literal("d", "1"),
            )
        )
    assert cyclic.value.failures == ["Invalid DMN model: Cyclic dependencies between BKMs detected."]
    with pytest.raises(DmnParseError) as missing:
        parse_dmn(definitions(uses("d", "<literalExpression><text>1</text></literalExpression>", "ghost")))
    assert missing.value.failures == [
        "Invalid DMN model: 'd' requires the business knowledge model 'ghost', which does not exist in this DMN"
    ]
    with pytest.raises(DmnParseError) as unknown_name:
        parse_dmn(
            definitions(
                uses(
                    "d",
                    "<invocation><literalExpression><text>nobody</text></literalExpression></invocation>",
                )
            )
        )
    assert unknown_name.value.failures == ["no BKM found with name 'nobody'"]
