"""pyzeebe 4.7.0's own integration suite run DIRECTLY against `python -m engine` (issue 14),
through tests/routing/pyzeebe_suite.py (pyzeebe's test files as shipped, its conftest pointed at
the engine's address instead of a Zeebe container).

Its package-wide deployment of test.bpmn (a message start event) and its
`publish_message_test.py` need messages: they must pass. The decision tests (test.dmn) are the
DMN work's; one that fails may only fail with the engine's own "not supported" refusal.
Skipped with the reason when the sdist cannot be fetched (PyPI unreachable).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import all_records
from tests.routing.pyzeebe_suite import (
    SuiteResult,
    SuiteUnavailable,
    engine_refusals,
    fetch_suite,
    prepare_suite,
    run_suite,
    suite_outcome,
)

MUST_PASS = (
    "cancel_process_test.py::test_cancel_process",
    "healthcheck_test.py::test_ping",
    "publish_message_test.py::test_publish_message",
    "run_process_test.py::test_run_process",
    "run_process_test.py::test_non_existent_process",
    "run_process_test.py::test_run_process_with_result",
    "topology_test.py::test_topology",
)


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache_dir = (
        cache.mkdir("pyzeebe-sdist") if cache is not None else tmp_path_factory.mktemp("pyzeebe-sdist")
    )
    try:
        sdist = fetch_suite(Path(cache_dir))
    except SuiteUnavailable as error:
        pytest.skip(f"pyzeebe's integration suite is unavailable: {error}")
    return prepare_suite(sdist, tmp_path_factory.mktemp("suite"))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = EngineProcess(tmp_path_factory.mktemp("suite-engine") / "data", partitions=2).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def outcomes(suite_root: Path, engine: EngineProcess) -> tuple[dict[str, SuiteResult], dict[str, str], str]:
    results, refusals, output = run_suite(suite_root, engine.address)
    return {r.name: r for r in results}, engine_refusals(results, refusals), output


def test_the_suite_deploys_its_message_start_event(
    outcomes: tuple[dict[str, SuiteResult], dict[str, str], str], engine: EngineProcess
) -> None:
    results, blocked, output = outcomes
    assert set(MUST_PASS) <= set(results), output
    assert not any("test.bpmn" in reason for reason in blocked.values()), blocked


@pytest.mark.parametrize("name", MUST_PASS)
def test_pyzeebe_suite_directly_against_the_engine(
    name: str, outcomes: tuple[dict[str, SuiteResult], dict[str, str], str], engine: EngineProcess
) -> None:
    results, _, output = outcomes
    result = results.get(name)
    assert result is not None, f"{name} did not run:\n{output[-4000:]}"
    # pyzeebe's cancel test racing its own worker counts as passed only when the log proves it
    outcome = suite_outcome(result, [all_records(engine.data_dir)])
    assert outcome == "passed", f"{name} {result.outcome}:\n{result.message}"


def test_decision_tests_pass_or_are_refused_by_the_engine(
    outcomes: tuple[dict[str, SuiteResult], dict[str, str], str],
) -> None:
    results, blocked, _ = outcomes
    decisions = {name: r for name, r in results.items() if name.startswith("evaluate_decision_test.py")}
    assert decisions, "the suite has decision tests"
    for name, result in decisions.items():
        if result.outcome != "passed":
            assert name in blocked, (
                f"{name} {result.outcome} for another reason than a refusal:\n{result.message}"
            )
