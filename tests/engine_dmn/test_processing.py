"""Decision processing on an in-process broker (the records and rules below the gateway)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.broker import Broker
from engine.processing import decision_state
from engine.processing.command import Command
from engine.processing.processors.decisions import EvaluateDecision, evaluate_command_value
from tests.engine.helpers import one_task_process
from tests.engine_dmn.builder import definitions, literal

GREETING = definitions(literal("greeting", '"Hello " + name'), definitions_id="greetings")


def with_broker(tmp_path: Path, scenario: Callable[[Broker], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        broker = Broker(tmp_path / "data", 2)
        await broker.start()
        try:
            return await scenario(broker)
        finally:
            await broker.stop()

    return asyncio.run(main())


def evaluate(
    broker: Broker, partition_id: int, decision_id: str, variables: dict[str, Any]
) -> dict[str, Any]:
    request = EvaluateDecision(decision_id, -1, variables)
    command = Command("DECISION_EVALUATION", "EVALUATE", evaluate_command_value(request), request=request)
    return dict(broker.partitions[partition_id].execute(command))


def test_a_deployment_with_something_new_versions_its_duplicate_decisions_too(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> list[dict[str, Any]]:
        first = await broker.deploy([("greetings.dmn", GREETING)])
        duplicate = await broker.deploy([("greetings.dmn", GREETING)])
        with_process = await broker.deploy(
            [("greetings.dmn", GREETING), ("task.bpmn", one_task_process("greeting-task", "work"))]
        )
        return [first["value"], duplicate["value"], with_process["value"]]

    first, duplicate, with_process = with_broker(tmp_path, scenario)
    [decision] = first["decisionsMetadata"]
    assert (decision["version"], decision["duplicate"]) == (1, False)
    # the same resource again: the same key and version, marked duplicate, no new record
    [same] = duplicate["decisionsMetadata"]
    assert (same["decisionKey"], same["version"], same["duplicate"]) == (decision["decisionKey"], 1, True)
    assert duplicate["decisionRequirementsMetadata"][0]["duplicate"] is True
    # deployed together with a new process (Zeebe DmnResourceTransformer.writeRecords): a new version
    [renewed] = with_process["decisionsMetadata"]
    assert (renewed["version"], renewed["duplicate"]) == (2, False)
    assert renewed["decisionKey"] != decision["decisionKey"]
    [drg] = with_process["decisionRequirementsMetadata"]
    assert (drg["decisionRequirementsVersion"], drg["duplicate"]) == (2, False)
    assert renewed["decisionRequirementsKey"] == drg["decisionRequirementsKey"]
    assert "resource" not in drg and drg["resourceName"] == "greetings.dmn"


def test_a_resource_that_no_longer_parses_fails_the_evaluation(tmp_path: Path) -> None:
    async def scenario(broker: Broker) -> tuple[dict[str, Any], dict[str, Any]]:
        await broker.deploy([("greetings.dmn", GREETING)])
        before = evaluate(broker, 2, "greeting", {"name": "Ada"})
        # as if an upgraded, stricter parser refused the stored resource after a restart
        store = broker.partitions[2].state.decision_state
        for value in store.requirements.values():
            decision_state._PARSED_CACHE.pop(value["checksum"], None)
            value["resource"] = base64.b64encode(b"<definitions/>").decode()
        after = evaluate(broker, 2, "greeting", {"name": "Ada"})
        return before, after

    before, after = with_broker(tmp_path, scenario)
    assert (before["intent"], before["value"]["decisionOutput"]) == ("EVALUATED", '"Hello Ada"')
    assert after["intent"] == "FAILED"
    assert after["value"]["evaluationFailureMessage"] == (
        "Expected to evaluate decision 'greeting', but the decision requirements graph is invalid"
    )
    assert after["value"]["failedDecisionId"] == "greeting"
