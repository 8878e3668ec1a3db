"""Real DMN written by others: zeebe-play's companion decision (../shared/data/bpmn) and
pyzeebe 4.7.0's integration-suite decision (read from its sdist, which is not part of the repo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.dmn import evaluate_decision, json_text, parse_dmn
from tests.requirements import requires
from tests.routing.pyzeebe_suite import SuiteUnavailable, sdist_member

SHARED_DMN = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bpmn" / "zeebe-play__is_legal_good.dmn"
)


@requires(SHARED_DMN.is_file(), f"shared reference data not present at {SHARED_DMN}")
@pytest.mark.parametrize(
    ("item", "legal", "rule_index"),
    [
        ("spice", False, 1),
        ("weapons", False, 2),
        ("chak-root", False, 3),
        ("ancient artifacts", False, 4),
        ("tea", True, 5),
    ],
)
def test_zeebe_play_is_legal_good(item: str, legal: bool, rule_index: int) -> None:
    drg = parse_dmn(SHARED_DMN.read_bytes())
    assert (drg.id, drg.name, list(drg.decisions)) == ("illegal_goods", "Illegal goods", ["is_legal_item"])

    result = evaluate_decision(drg, "is_legal_item", {"item": item})

    assert result.output is legal
    [evaluated] = result.evaluated_decisions
    assert (evaluated.decision_id, evaluated.decision_name) == ("is_legal_item", "Is legal item?")
    assert [(i.input_id, i.input_name, i.input_value) for i in evaluated.evaluated_inputs] == [
        ("Input_1", "Item", item)
    ]
    [rule] = evaluated.matched_rules  # FIRST: one rule even though the empty last rule matches everything
    assert rule.rule_index == rule_index
    assert [(o.output_id, o.output_name, o.output_value) for o in rule.evaluated_outputs] == [
        ("Output_1", "Is legal", legal)
    ]


@pytest.fixture(scope="module")
def pyzeebe_test_dmn(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """pyzeebe's test.dmn from its verified PyPI sdist (tests/routing/pyzeebe_suite.py)."""
    try:
        return sdist_member(tmp_path_factory.mktemp("pyzeebe-sdist"), "tests/integration/test.dmn")
    except SuiteUnavailable as error:
        pytest.skip(f"pyzeebe's sdist is unavailable: {error}")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("1", "One"), ("2", {"foo": "bar"}), ("3", 3), ("4", None)],
)
def test_pyzeebe_integration_decision(pyzeebe_test_dmn: bytes, given: str, expected: Any) -> None:
    """What pyzeebe's evaluate_decision_test.py asserts: decision_output, the first evaluated
    decision's output and its first matched rule's first output value (all JSON texts)."""
    drg = parse_dmn(pyzeebe_test_dmn)
    result = evaluate_decision(drg, "test", {"input": given})

    assert not result.is_failure
    assert json_text(result.output) == json_text(expected)
    assert result.evaluated_decisions[0].decision_output == expected
    if expected is not None:
        assert result.evaluated_decisions[0].matched_rules[0].evaluated_outputs[0].output_value == expected
