"""Malformed, unsupported and hostile DMN: a clear `DmnParseError`, never a crash."""

from __future__ import annotations

import pytest

from engine.dmn import DmnParseError, parse_dmn
from tests.engine_dmn.builder import DMN13, definitions, literal, table


def failures(content: bytes) -> list[str]:
    with pytest.raises(DmnParseError) as raised:
        parse_dmn(content)
    return raised.value.failures


def test_cyclic_required_decisions_are_rejected_with_dmn_scalas_message() -> None:
    content = definitions(
        literal("a", "b", requires=["b"]),
        literal("b", "c", requires=["c"]),
        literal("c", "a", requires=["a"]),
    )
    assert failures(content) == ["Invalid DMN model: Cyclic dependencies between decisions detected."]
    assert failures(definitions(literal("self", "self", requires=["self"]))) == [
        "Invalid DMN model: Cyclic dependencies between decisions detected."
    ]


def test_a_missing_required_decision_is_named() -> None:
    assert failures(definitions(literal("a", "ghost", requires=["ghost"]))) == [
        "Invalid DMN model: the decision 'a' requires the decision 'ghost', which does not exist in this DMN"
    ]


def test_a_required_decision_of_another_model_needs_an_import() -> None:
    content = definitions(literal("a", "1")).replace(
        b"</definitions>",
        b'<decision id="b" name="B"><informationRequirement><requiredDecision href="http://other#x"/>'
        b"</informationRequirement><literalExpression><text>1</text></literalExpression></decision></definitions>",
    )
    assert failures(content) == ["No import found for namespace 'http://other'."]


def test_required_inputs_are_documentation_only() -> None:
    content = (
        f'<definitions xmlns="{DMN13}" id="drg" name="DRG" namespace="n">'
        '<inputData id="temperature" name="temperature"/>'
        '<decision id="d" name="D"><informationRequirement id="i"><requiredInput href="#temperature"/>'
        "</informationRequirement><literalExpression><text>temperature</text></literalExpression></decision>"
        "</definitions>"
    ).encode()
    assert list(parse_dmn(content).decisions) == ["d"]


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (
            table(inputs=["x"], rules=[(["< "], ['"a"'])]),
            "FEEL unary-tests: failed to parse unary-tests '< '",
        ),
        (
            table(inputs=["x"], rules=[(["1"], ['"unterminated'])]),
            "FEEL expression: failed to parse expression",
        ),
        (table(inputs=["x +"], rules=[]), "FEEL expression: failed to parse expression 'x +'"),
        (literal("l", "if then"), "FEEL expression: failed to parse expression 'if then'"),
    ],
)
def test_unparsable_feel_is_reported_with_the_text(decision: str, expected: str) -> None:
    [failure] = failures(definitions(decision))
    assert failure.startswith(expected)


def test_every_problem_of_a_resource_is_listed() -> None:
    decision = table(inputs=["x"], rules=[(["< "], ["1 +"]), (["[1..2"], ['"ok"'])])
    found = failures(definitions(decision))
    assert len(found) == 3
    assert DmnParseError(found).resource_message("rules.dmn").startswith("'rules.dmn': FEEL unary-tests:")


def test_an_expression_without_text_must_not_be_empty() -> None:
    content = definitions(table(inputs=["x"], rules=[(["1"], ["2"])])).replace(
        b'<inputExpression id="d_ie1"><text>x</text></inputExpression>', b'<inputExpression id="d_ie1"/>'
    )
    assert failures(content) == ["The expression 'd_ie1' must not be empty."]


def test_another_expression_language_is_not_supported() -> None:
    content = definitions(literal("l", "1")).replace(
        b'<literalExpression id="l_le">', b'<literalExpression id="l_le" expressionLanguage="javascript">'
    )
    assert failures(content) == ["Expression language 'javascript' is not supported"]


def test_collect_aggregation_over_several_outputs_is_refused() -> None:
    decision = table(
        inputs=["x"],
        outputs=[("a", None), ("b", None)],
        rules=[(["-"], ["1", "2"])],
        hit_policy="COLLECT",
        aggregation="SUM",
    )
    assert failures(definitions(decision)) == [
        "hit policy 'COLLECT' with aggregator is not defined for compound output"
    ]


def test_outputs_of_a_multi_output_table_need_names() -> None:
    decision = table(inputs=["x"], outputs=[("a", None), ("", "Second")], rules=[(["-"], ["1", "2"])])
    assert failures(definitions(decision)) == ["no output name defined for `Second`"]


def test_a_rule_with_missing_cells_is_refused() -> None:
    decision = table(inputs=["x", "y"], rules=[(["1"], ['"a"'])])
    assert failures(definitions(decision)) == [
        "decision 'd': rule 1 (d_r1) has 1 input and 1 output entries, but the table has 2 inputs and 1 outputs"
    ]


def test_unknown_hit_policy_and_aggregation() -> None:
    assert failures(definitions(table(hit_policy="RANDOM", rules=[(["-"], ["1"])]))) == [
        "decision 'd': unsupported hit policy 'RANDOM'"
    ]
    assert failures(definitions(table(hit_policy="COLLECT", aggregation="AVG", rules=[(["-"], ["1"])]))) == [
        "decision 'd': unsupported aggregation 'AVG'"
    ]


def test_logic_the_engine_does_not_evaluate_is_refused_by_name() -> None:
    function = (
        '<decision id="c" name="C"><functionDefinition><literalExpression><text>1</text></literalExpression>'
        "</functionDefinition></decision>"
    )
    assert failures(definitions(function)) == [
        "decision 'c' uses a function definition, which is not supported by the Fleetflow embedded engine "
        "(decision tables, literal expressions, contexts, lists, relations and invocations are)"
    ]
    assert failures(definitions('<decision id="empty" name="Empty"/>')) == [
        "unsupported decision expression 'null' (decision 'empty' has no logic)"
    ]


def test_ids_are_required_and_unique() -> None:
    assert failures(definitions(literal("a", "1"), literal("a", "2"))) == [
        "Failed to parse DMN: the id 'a' is used by more than one decision"
    ]
    assert failures(
        definitions('<decision name="x"><literalExpression><text>1</text></literalExpression></decision>')
    ) == ["Failed to parse DMN: a decision has no id"]
    assert failures(definitions()) == ["Failed to parse DMN: the DMN defines no decision"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "Failed to parse DMN: The resource is empty"),
        (b"\x00\xff garbage", "Failed to parse DMN: Failed to parse the XML"),
        (b"<definitions", "Failed to parse DMN: Failed to parse the XML"),
        (
            b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="x"/>',
            "Failed to parse DMN: the root element must be 'definitions' in a DMN 1.1-1.5 namespace, but found "
            "'definitions' in namespace 'http://www.omg.org/spec/BPMN/20100524/MODEL'",
        ),
        (
            b"<decision/>",
            "Failed to parse DMN: the root element must be 'definitions' in a DMN 1.1-1.5 namespace, but found "
            "'decision' without a namespace",
        ),
    ],
)
def test_not_dmn_at_all(content: bytes, expected: str) -> None:
    [failure] = failures(content)
    assert failure.startswith(expected)


def test_entity_expansion_is_never_attempted() -> None:
    billion_laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{"&lol{};".format(i - 1 if i > 1 else "") * 10}">'.encode()
            for i in range(1, 10)
        )
        + f'<definitions xmlns="{DMN13}" id="d" name="d" namespace="n"><decision id="x" name="x">'.encode()
        + b"<literalExpression><text>&lol9;</text></literalExpression></decision></definitions>"
    )
    [failure] = failures(billion_laughs)
    assert failure.startswith("Failed to parse DMN: DOCTYPE declarations are not allowed in DMN resources")
    external = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + f'<definitions xmlns="{DMN13}" id="d" name="d" namespace="n"/>'.encode()
    )
    assert failures(external)[0].startswith("Failed to parse DMN: DOCTYPE declarations are not allowed")


def test_huge_and_deeply_nested_documents_are_refused_before_parsing_them_whole() -> None:
    huge = definitions(literal("a", '"' + "x" * (5 * 1024 * 1024) + '"'))
    assert failures(huge)[0].startswith("Failed to parse DMN: The resource is ")
    deep = (
        f'<definitions xmlns="{DMN13}" id="d" name="d" namespace="n">'.encode()
        + b"<a>" * 5000
        + b"</a>" * 5000
    )
    assert failures(deep + b"</definitions>")[0] == (
        "Failed to parse DMN: The XML nests elements deeper than the limit of 100 levels"
    )
    # 25,000 rules of five elements each, under the byte limit
    rule = b"<rule><inputEntry><text>-</text></inputEntry><outputEntry><text>1</text></outputEntry></rule>"
    wide = definitions(table(inputs=["x"], rules=[])).replace(
        b"</decisionTable>", rule * 25_000 + b"</decisionTable>"
    )
    assert failures(wide)[0].startswith(
        "Failed to parse DMN: The XML has more than the limit of 100000 elements"
    )
