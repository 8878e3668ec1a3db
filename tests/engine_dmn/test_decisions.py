"""Literal expressions, required decisions and evaluation failures."""

from __future__ import annotations

from engine.dmn import evaluate_decision, parse_dmn
from tests.engine_dmn.builder import DMN11, DMN12, definitions, literal, table


def test_literal_expression_with_a_variable_name() -> None:
    drg = parse_dmn(definitions(literal("greeting", '"Hello " + name', variable="message")))
    result = evaluate_decision(drg, "greeting", {"name": "Ada"})

    assert result.output == "Hello Ada"
    [evaluated] = result.evaluated_decisions
    assert evaluated.decision_type == "LITERAL_EXPRESSION"
    assert evaluated.decision_output == "Hello Ada"
    assert evaluated.evaluated_inputs == () and evaluated.matched_rules == ()
    assert drg.decisions["greeting"].result_name == "message"


def test_literal_expression_results_of_every_type() -> None:
    drg = parse_dmn(
        definitions(
            literal("context", '{"a": 1, "b": [true, null, 2.5]}'),
            literal("date", 'date("2024-02-29") + duration("P1D")'),
            literal("missing", "no_such_variable"),
        )
    )
    assert evaluate_decision(drg, "context", {}).output == {"a": 1, "b": [True, None, 2.5]}
    assert evaluate_decision(drg, "date", {}).output == "2024-03-01"
    assert evaluate_decision(drg, "missing", {}).output is None


def test_the_variable_type_is_checked() -> None:
    drg = parse_dmn(
        definitions(
            literal("total", "a + b", type_ref="number"),
            literal("label", "a", type_ref="string"),
            literal("anything", "a", type_ref="Any"),
        )
    )
    assert evaluate_decision(drg, "total", {"a": 1, "b": 2}).output == 3
    failed = evaluate_decision(drg, "label", {"a": 1})
    assert (
        failed.failure_message
        == "Expected to evaluate decision 'label', but expected 'string' but found 'ValNumber(1)'"
    )
    assert failed.failed_decision_id == "label"
    # null passes any type, and types dmn-scala does not know are not checked
    assert not evaluate_decision(drg, "label", {}).is_failure
    assert evaluate_decision(drg, "anything", {"a": [1]}).output == [1]


def chain_dmn() -> bytes:
    return definitions(
        table(
            "vendor_rules",
            inputs=["vendor"],
            rules=[(['"dell"'], ['"idrac"']), (['"hp"'], ['"ilo"'])],
            variable="management",
        ),
        table(
            "severity",
            inputs=["temperature"],
            rules=[(["> 80"], ['"critical"']), (["<= 80"], ['"normal"'])],
        ),
        table(
            "action",
            inputs=["management", "severity"],
            rules=[
                (['"idrac"', '"critical"'], ['"racadm serveraction powercycle"']),
                (["-", "-"], ['"none"']),
            ],
            hit_policy="FIRST",
            requires=["vendor_rules", "severity"],
        ),
        literal("summary", 'action + " (" + string(temperature) + ")"', requires=["action"]),
    )


def test_required_decisions_are_evaluated_first_and_seen_by_result_name() -> None:
    drg = parse_dmn(chain_dmn())
    result = evaluate_decision(drg, "summary", {"vendor": "dell", "temperature": 91})

    assert result.output == "racadm serveraction powercycle (91)"
    assert [e.decision_id for e in result.evaluated_decisions] == [
        "vendor_rules",
        "severity",
        "action",
        "summary",
    ]
    assert [e.decision_output for e in result.evaluated_decisions] == [
        "idrac",
        "critical",
        "racadm serveraction powercycle",
        "racadm serveraction powercycle (91)",
    ]
    # a decision sees only the results of the decisions it requires directly
    assert [i.input_value for i in result.evaluated_decisions[2].evaluated_inputs] == ["idrac", "critical"]


def test_a_decision_required_twice_is_evaluated_once() -> None:
    drg = parse_dmn(
        definitions(
            literal("base", "x * 2"),
            literal("left", "base + 1", requires=["base"]),
            literal("right", "base + 2", requires=["base"]),
            literal("top", "left + right", requires=["left", "right"]),
        )
    )
    result = evaluate_decision(drg, "top", {"x": 5})
    assert result.output == 23
    assert [e.decision_id for e in result.evaluated_decisions] == ["base", "left", "right", "top"]


def test_a_failing_required_decision_is_the_failed_decision() -> None:
    drg = parse_dmn(
        definitions(
            table("checks", inputs=["x"], rules=[(["> 0"], ['"a"']), (["> 1"], ['"b"'])]),
            literal("top", "checks", requires=["checks"]),
        )
    )
    result = evaluate_decision(drg, "top", {"x": 5})
    assert result.is_failure
    assert result.failed_decision_id == "checks"
    assert result.failure_message is not None
    assert result.failure_message.startswith(
        "Expected to evaluate decision 'top', but multiple values aren't allowed"
    )
    assert [e.decision_id for e in result.evaluated_decisions] == ["checks"]


def test_a_feel_failure_fails_the_evaluation_with_its_message() -> None:
    drg = parse_dmn(
        definitions(
            table("guarded", inputs=['assert(x, x > 0, "x must be positive")'], rules=[(["-"], ["1"])]),
            literal("asserted", 'assert(x, x != null, "x is required")'),
        )
    )
    failed = evaluate_decision(drg, "guarded", {"x": -1})
    assert failed.is_failure and failed.failed_decision_id == "guarded"
    assert failed.failure_message is not None and "x must be positive" in failed.failure_message
    assert failed.evaluated_decisions[0].decision_output is None
    literal_failed = evaluate_decision(drg, "asserted", {})
    assert literal_failed.failure_message is not None and "x is required" in literal_failed.failure_message


def test_an_unknown_decision_id() -> None:
    drg = parse_dmn(definitions(literal("a", "1")))
    result = evaluate_decision(drg, "b", {})
    assert result.failure_message == "Expected to evaluate decision 'b', but no decision found with id 'b'"
    assert result.failed_decision_id == "b"
    assert result.evaluated_decisions == ()


def test_dmn_11_and_12_namespaces_are_read() -> None:
    for namespace in (DMN11, DMN12):
        drg = parse_dmn(definitions(table(inputs=["x"], rules=[(["1"], ['"one"'])]), namespace=namespace))
        assert evaluate_decision(drg, "d", {"x": 1}).output == "one"


def test_a_long_chain_of_required_decisions_does_not_recurse() -> None:
    # 3,000 decisions each requiring the previous one: parsing and evaluation are iterative
    decisions = [literal("d0", "1")] + [
        literal(f"d{i}", f"d{i - 1} + 1", requires=[f"d{i - 1}"]) for i in range(1, 3000)
    ]
    drg = parse_dmn(definitions(*decisions))
    result = evaluate_decision(drg, "d2999", {})
    assert result.output == 3000
    assert len(result.evaluated_decisions) == 3000


def test_deeply_nested_variables_fail_the_evaluation_instead_of_the_engine() -> None:
    nested: dict[str, object] = {}
    current = nested
    for _ in range(5000):
        current["a"] = {}
        current = current["a"]  # type: ignore[assignment]
    drg = parse_dmn(definitions(literal("echo", "v")))
    result = evaluate_decision(drg, "echo", {"v": nested})
    assert result.is_failure
    assert result.failure_message is not None and result.failure_message.startswith(
        "Expected to evaluate decision 'echo', but"
    )
