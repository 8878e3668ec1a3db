"""The rejection text has Zeebe's shape, and Expression follows Zeebe's static/FEEL rule."""

from __future__ import annotations

import pytest

from engine.bpmn import BpmnValidationError, Expression, Problem, zeebe_rejection_reason
from engine.bpmn.model import HeaderEvaluationError, format_user_task_header
from tests.engine_bpmn.snippets import document, rejection


def test_zeebe_message_shape_for_one_resource() -> None:
    body = (
        '<bpmn:startEvent id="s" /><bpmn:serviceTask id="task"><bpmn:extensionElements>'
        '<zeebe:taskDefinition type="" /></bpmn:extensionElements></bpmn:serviceTask>'
        '<bpmn:sequenceFlow id="f" sourceRef="s" targetRef="task" />'
        '<bpmn:sequenceFlow id="g" sourceRef="task" targetRef="nowhere" />'
    )
    error = rejection(document(body), "repair.bpmn")
    assert error.zeebe_message() == (
        "Expected to deploy new resources, but encountered the following errors:\n"
        "'repair.bpmn': - Element: task > extensionElements > taskDefinition\n"
        "    - ERROR: Attribute 'type' must be present and not empty\n"
        "- Element: g\n"
        "    - ERROR: SequenceFlow has targetRef 'nowhere'  which cannot be resolved"
    )
    assert str(error) == error.resource_message()
    assert error.resource_name == "repair.bpmn"


def test_problems_of_one_element_are_grouped() -> None:
    error = BpmnValidationError(
        "a.bpmn",
        [Problem("x", "first"), Problem("y", "other"), Problem("x", "second")],
    )
    assert error.resource_message() == (
        "'a.bpmn': - Element: x\n    - ERROR: first\n    - ERROR: second\n- Element: y\n    - ERROR: other"
    )


def test_resource_level_problem_and_several_resources() -> None:
    broken = rejection(b"<a>", "broken.bpmn")
    invalid = BpmnValidationError("b.bpmn", [Problem("t", "bad")])
    assert zeebe_rejection_reason([broken, invalid]) == (
        "Expected to deploy new resources, but encountered the following errors:\n"
        "'broken.bpmn': Failed to parse the XML: no element found (line 1, column 4)\n"
        "'b.bpmn': - Element: t\n    - ERROR: bad"
    )


def test_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        BpmnValidationError("a.bpmn", [])


@pytest.mark.parametrize(
    ("raw", "is_feel", "text"),
    [
        ("=x", True, "x"),
        ("= a + 1", True, " a + 1"),
        ("=", False, "="),  # Zeebe's pattern `=(.+)` needs one character after '='
        (" =x", False, " =x"),  # attributes are not trimmed
        ("check-cpu", False, "check-cpu"),
        ("", False, ""),
        ("=\nmultiline", True, "\nmultiline"),
    ],
)
def test_expression_static_or_feel(raw: str, is_feel: bool, text: str) -> None:
    expression = Expression(raw)
    assert expression.is_feel is is_feel
    assert expression.is_static is (not is_feel)
    assert expression.text == text
    if not is_feel:
        assert expression.evaluate({"x": 1}) == raw


def test_feel_expression_built_by_hand_evaluates_without_changing() -> None:
    expression = Expression("=count + 1")
    assert expression.compiled is None
    assert expression.evaluate({"count": 2}) == 3
    assert expression.compiled is None  # frozen: the compilation is cached by text instead
    assert expression == Expression("=count + 1")


def test_user_task_header_formatting() -> None:
    groups = Expression("=groups")
    assert format_user_task_header("io.camunda.zeebe:candidateGroups", ["a", "b"], groups) == '["a","b"]'
    assert format_user_task_header("io.camunda.zeebe:candidateGroups", "a, b", groups) == '["a","b"]'
    assert format_user_task_header("io.camunda.zeebe:assignee", None, groups) is None
    with pytest.raises(HeaderEvaluationError, match="to be 'STRING'"):
        format_user_task_header("io.camunda.zeebe:assignee", 5, Expression("=five"))
    with pytest.raises(HeaderEvaluationError, match="to be 'ARRAY'"):
        format_user_task_header("io.camunda.zeebe:candidateUsers", [1], groups)


def test_deployment_with_duplicate_process_ids_is_rejected() -> None:
    from engine.bpmn.deployment import DeploymentRejected, parse_deployment

    valid = document('<bpmn:startEvent id="s" />', process_id="same")
    with pytest.raises(DeploymentRejected) as caught:
        parse_deployment([("p1.bpmn", valid), ("p2.bpmn", valid), ("p3.bpmn", valid)])
    assert caught.value.reason == (
        "Expected to deploy new resources, but encountered the following errors:\n"
        "Duplicated process id in resources 'p1.bpmn' and 'p2.bpmn'\n"
        "Duplicated process id in resources 'p1.bpmn' and 'p3.bpmn'"
    )


def test_deployment_lists_every_invalid_resource() -> None:
    from engine.bpmn.deployment import DeploymentRejected, parse_deployment

    valid = document('<bpmn:startEvent id="s" />', process_id="ok")
    with pytest.raises(DeploymentRejected) as caught:
        parse_deployment([("ok.bpmn", valid), ("bad.bpmn", b"<x"), ("empty.bpmn", b"")])
    assert caught.value.reason == (
        "Expected to deploy new resources, but encountered the following errors:\n"
        "'bad.bpmn': Failed to parse the XML: unclosed token (line 1, column 1)\n"
        "'empty.bpmn': The resource is empty"
    )
    assert [e.resource_name for e in caught.value.errors] == ["bad.bpmn", "empty.bpmn"]


def test_valid_deployment_keeps_resource_order() -> None:
    from engine.bpmn.deployment import parse_deployment

    resources = [
        (f"{name}.bpmn", document('<bpmn:startEvent id="s" />', process_id=name)) for name in ("b", "a")
    ]
    parsed = parse_deployment(resources)
    assert [(name, [m.bpmn_process_id for m in models]) for name, models in parsed] == [
        ("b.bpmn", ["b"]),
        ("a.bpmn", ["a"]),
    ]
