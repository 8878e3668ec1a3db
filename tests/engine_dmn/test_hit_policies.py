"""Decision tables: every hit policy Zeebe supports, as dmn-scala evaluates them."""

from __future__ import annotations

from typing import Any

import pytest

from engine.dmn import DecisionEvaluationResult, evaluate_decision, json_text, parse_dmn
from tests.engine_dmn.builder import definitions, table


def run(decision_xml: str, variables: dict[str, Any], decision_id: str = "d") -> DecisionEvaluationResult:
    return evaluate_decision(parse_dmn(definitions(decision_xml)), decision_id, variables)


RISK_RULES = [
    (["< 10"], ['"low"']),
    (["[5..20]"], ['"medium"']),
    ([">= 15"], ['"high"']),
]


def matched_indexes(result: DecisionEvaluationResult) -> list[int]:
    return [rule.rule_index for rule in result.evaluated_decisions[-1].matched_rules]


def test_unique_single_match_gives_the_value_and_the_audit() -> None:
    result = run(table(inputs=["amount"], rules=RISK_RULES, hit_policy="UNIQUE"), {"amount": 2})

    assert not result.is_failure
    assert result.output == "low"
    [evaluated] = result.evaluated_decisions
    assert (evaluated.decision_id, evaluated.decision_name, evaluated.decision_type) == (
        "d",
        "Decision d",
        "DECISION_TABLE",
    )
    assert evaluated.decision_output == "low"
    assert [(i.input_id, i.input_name, i.input_value) for i in evaluated.evaluated_inputs] == [
        ("d_in1", "Input 1", 2)
    ]
    [rule] = evaluated.matched_rules
    assert (rule.rule_id, rule.rule_index) == ("d_r1", 1)
    assert [(o.output_id, o.output_name, o.output_value) for o in rule.evaluated_outputs] == [
        ("d_out1", "out", "low")
    ]


def test_unique_is_the_default_and_several_matches_fail_with_zeebes_message() -> None:
    result = run(table(inputs=["amount"], rules=RISK_RULES), {"amount": 7})

    assert result.is_failure
    assert result.output is None
    assert result.failure_message == (
        "Expected to evaluate decision 'd', but multiple values aren't allowed for UNIQUE hit policy. "
        "found: 'List(Map(out -> ValString(low)), Map(out -> ValString(medium)))'"
    )
    assert result.failed_decision_id == "d"
    # the failed decision is audited with its inputs and matched rules and a null output
    [evaluated] = result.evaluated_decisions
    assert evaluated.decision_output is None
    assert matched_indexes(result) == [1, 2]


def test_no_match_gives_null_and_an_audit_without_rules() -> None:
    result = run(table(inputs=["amount"], rules=[(["< 0"], ['"negative"'])]), {"amount": 5})

    assert not result.is_failure
    assert result.output is None
    assert json_text(result.output) == "null"
    assert result.evaluated_decisions[0].matched_rules == ()


def test_no_match_gives_the_default_output_entries() -> None:
    decision = table(
        inputs=["amount"],
        outputs=[("level", None), ("reason", None)],
        rules=[(["< 0"], ['"neg"', '"below zero"'])],
        defaults={"level": '"none"', "reason": '"no rule"'},
    )
    assert run(decision, {"amount": 5}).output == {"level": "none", "reason": "no rule"}
    single = table(inputs=["amount"], rules=[(["< 0"], ['"neg"'])], defaults={"out": "amount * 2"})
    assert run(single, {"amount": 5}).output == 10


def test_first_takes_the_first_matching_rule_only() -> None:
    result = run(table(inputs=["amount"], rules=RISK_RULES, hit_policy="FIRST"), {"amount": 17})

    assert result.output == "medium"
    assert matched_indexes(result) == [2]


def test_priority_ranks_by_the_output_values_order() -> None:
    decision = table(
        inputs=["amount"],
        rules=RISK_RULES,
        hit_policy="PRIORITY",
        output_values={"out": '"high","medium","low"'},
    )
    assert run(decision, {"amount": 17}).output == "high"
    assert run(decision, {"amount": 7}).output == "medium"
    assert run(decision, {"amount": 1}).output == "low"
    # every matched rule is audited, not only the winner
    assert matched_indexes(run(decision, {"amount": 17})) == [2, 3]


def test_output_order_lists_by_priority() -> None:
    decision = table(
        inputs=["amount"],
        rules=RISK_RULES,
        hit_policy="OUTPUT ORDER",
        output_values={"out": '"high","medium","low"'},
    )
    assert run(decision, {"amount": 17}).output == ["high", "medium"]
    assert run(decision, {"amount": 7}).output == ["medium", "low"]


def test_any_accepts_equal_outputs_and_refuses_different_ones() -> None:
    decision = table(
        inputs=["amount"],
        rules=[(["> 0"], ['"ok"']), (["> 5"], ['"ok"']), (["> 10"], ['"review"'])],
        hit_policy="ANY",
    )
    assert run(decision, {"amount": 7}).output == "ok"
    failed = run(decision, {"amount": 11})
    assert failed.failure_message == (
        "Expected to evaluate decision 'd', but different values aren't allowed for ANY hit policy. "
        "found: 'List(Map(out -> ValString(ok)), Map(out -> ValString(review)))'"
    )


def test_rule_order_lists_every_match_in_rule_order() -> None:
    decision = table(inputs=["amount"], rules=RISK_RULES, hit_policy="RULE ORDER")
    assert run(decision, {"amount": 17}).output == ["medium", "high"]
    assert run(decision, {"amount": -1}).output == ["low"]


def test_multi_output_rule_order_gives_a_list_of_contexts() -> None:
    decision = table(
        inputs=["amount"],
        outputs=[("level", "Level"), ("score", None)],
        rules=[(["< 10"], ['"low"', "1"]), (["< 20"], ['"mid"', "2"])],
        hit_policy="RULE ORDER",
    )
    result = run(decision, {"amount": 5})
    assert result.output == [{"level": "low", "score": 1}, {"level": "mid", "score": 2}]
    # outputs are named by label when there is one, as Zeebe does
    outputs = result.evaluated_decisions[0].matched_rules[0].evaluated_outputs
    assert [(o.output_name, o.output_value) for o in outputs] == [("Level", "low"), ("score", 1)]


def test_multi_output_unique_gives_a_context() -> None:
    decision = table(
        inputs=["amount"],
        outputs=[("level", None), ("score", None)],
        rules=[(["< 10"], ['"low"', "amount * 1.5"])],
    )
    assert run(decision, {"amount": 3}).output == {"level": "low", "score": 4.5}


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [(None, [10, 20, 5]), ("SUM", 35), ("MIN", 5), ("MAX", 20), ("COUNT", 3)],
)
def test_collect_with_and_without_aggregation(aggregation: str | None, expected: Any) -> None:
    decision = table(
        inputs=["amount"],
        rules=[([">= 0"], ["10"]), ([">= 1"], ["20"]), (["< 100"], ["5"]), (["> 100"], ["1000"])],
        hit_policy="COLLECT",
        aggregation=aggregation,
    )
    assert run(decision, {"amount": 3}).output == expected


def test_collect_without_match_is_null_even_when_counting() -> None:
    # dmn-scala applies the default outputs (none here) before any aggregation
    decision = table(inputs=["amount"], rules=[(["< 0"], ["1"])], hit_policy="COLLECT", aggregation="COUNT")
    assert run(decision, {"amount": 3}).output is None


def test_collect_sum_over_a_string_fails() -> None:
    decision = table(
        inputs=["amount"],
        rules=[(["> 0"], ["1"]), (["> 0"], ['"two"'])],
        hit_policy="COLLECT",
        aggregation="SUM",
    )
    result = run(decision, {"amount": 3})
    assert (
        result.failure_message
        == "Expected to evaluate decision 'd', but expected number but found 'ValString(two)'"
    )


def test_decimal_sum_is_exact() -> None:
    decision = table(
        inputs=["amount"],
        rules=[(["> 0"], ["0.1"]), (["> 0"], ["0.2"])],
        hit_policy="COLLECT",
        aggregation="SUM",
    )
    assert run(decision, {"amount": 1}).output == 0.3


@pytest.mark.parametrize(
    ("entry", "value", "matches"),
    [
        ("-", "anything", True),
        ("", None, True),
        ('"a","b"', "b", True),
        ('"a","b"', "c", False),
        ('not("a","b")', "c", True),
        ('not("a","b")', "a", False),
        ("[1..5]", 5, True),
        ("]1..5[", 5, False),
        ("> 2, < -2", -3, True),
        ("? > limit", 11, True),
        ("? > limit", 9, False),
        ("< limit", 9, True),
        ("true", True, True),
        ('date("2024-01-01")', "not a date", False),
        # incomparable and null inputs do not match (and do not fail the evaluation)
        ("< 10", "a string", False),
        ("< 10", None, False),
        ("null", None, True),
    ],
)
def test_input_entries_are_feel_unary_tests(entry: str, value: Any, matches: bool) -> None:
    decision = table(inputs=["value"], rules=[([entry], ['"hit"'])])
    result = run(decision, {"value": value, "limit": 10})
    assert not result.is_failure, result.failure_message
    assert result.output == ("hit" if matches else None)


def test_every_input_entry_of_a_rule_must_match() -> None:
    decision = table(
        inputs=["vendor", "temperature"],
        rules=[(['"dell"', "> 80"], ['"replace fan"']), (['"dell"', "-"], ['"monitor"'])],
        hit_policy="FIRST",
    )
    assert run(decision, {"vendor": "dell", "temperature": 90}).output == "replace fan"
    assert run(decision, {"vendor": "dell", "temperature": 40}).output == "monitor"
    assert run(decision, {"vendor": "hp", "temperature": 90}).output is None


def test_input_name_falls_back_to_the_expression_text_cut_to_30_characters() -> None:
    long_expression = "if customer.premium then customer.discount else 0"
    decision = table(inputs=[long_expression], input_labels=[None], rules=[(["-"], ["1"])])
    result = run(decision, {})
    [evaluated_input] = result.evaluated_decisions[0].evaluated_inputs
    assert evaluated_input.input_name == long_expression[:30]
    assert evaluated_input.input_value == 0


def test_output_entries_see_the_variables() -> None:
    decision = table(inputs=["order.total"], rules=[(["> 100"], ['order.customer + " gets free shipping"'])])
    result = run(decision, {"order": {"total": 150, "customer": "Ada"}})
    assert result.output == "Ada gets free shipping"
    assert result.evaluated_decisions[0].evaluated_inputs[0].input_value == 150
