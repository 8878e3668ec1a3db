"""How often a multi-instance body evaluates its input collection, on the real broker driven
in-process (the same code `python -m engine` runs; a counting wrapper around the FEEL
evaluator is the only addition).

Each evaluation converts the whole collection, so a body that evaluated it again for every
inner completion cost O(n²) over n items and held its partition. It is evaluated once at
activation, again only when a variable the expression reads was written, and once after a
restart; the items are still the collection's current ones (checked through the jobs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from engine.broker import Broker
from engine.feel import CompiledExpression
from engine.processing.command import Command
from tests.engine.helpers import flow, process_xml

SEQUENTIAL = process_xml(
    "mi-evals",
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    '<bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="mi-evals"/>'
    "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>"
    '<bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:extensionElements>'
    '<zeebe:loopCharacteristics inputCollection="= items" inputElement="item"/></bpmn:extensionElements>'
    # numberOfInstances without an output collection: the collection's size, every completion
    '<bpmn:completionCondition xsi:type="bpmn:tFormalExpression">= numberOfCompletedInstances &gt; '
    "numberOfInstances</bpmn:completionCondition>"
    "</bpmn:multiInstanceLoopCharacteristics></bpmn:serviceTask>"
    '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    + flow("f1", "start", "task")
    + flow("f2", "task", "end"),
)


@pytest.fixture
def collection_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Texts of the `items` evaluations made from now on."""
    seen: list[str] = []
    original = CompiledExpression.evaluate

    def counting(self: CompiledExpression, variables: Any, **kwargs: Any) -> Any:
        if self.text.strip() == "items":
            seen.append(self.text)
        return original(self, variables, **kwargs)

    monkeypatch.setattr(CompiledExpression, "evaluate", counting)
    return seen


async def _run_items(
    broker: Broker, count: int, result: dict[str, Any] | None = None
) -> list[tuple[Any, int]]:
    """Activate and complete `count` jobs one at a time: (item, loopCounter) of each."""
    seen = []
    for _ in range(count):
        batches = broker.activate_jobs("mi-evals", "test", 60_000, 5, [])
        jobs = [(partition, job) for partition, batch in batches for job in batch]
        assert len(jobs) == 1, f"{len(jobs)} jobs active in a sequential body"
        partition, job = jobs[0]
        variables = json.loads(job["variables"]) if isinstance(job["variables"], str) else job["variables"]
        seen.append((variables["item"], variables["loopCounter"]))
        partition.execute(Command("JOB", "COMPLETE", {"variables": result or {}}, key=job["key"]))
        await partition.durable()
    return seen


def test_the_collection_is_evaluated_once_not_per_item(
    tmp_path: Path, collection_evaluations: list[str]
) -> None:
    async def scenario() -> None:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("evals.bpmn", SEQUENTIAL)])
            _, created, _ = broker.create_instance("mi-evals", -1, -1, {"items": list(range(200))}, [])
            assert await _run_items(broker, 80) == [(n, n + 1) for n in range(80)]
            # activation, then nothing per completion (was: two per completion)
            assert len(collection_evaluations) == 1
            # a write of the variable it reads: evaluated again, the new items are used
            await _run_items(broker, 1, {"items": [f"new-{n}" for n in range(100)]})
            assert len(collection_evaluations) == 2
            assert await _run_items(broker, 19) == [(f"new-{n}", n + 1) for n in range(81, 100)]
            assert len(collection_evaluations) == 2
            # 100 items ran: the body and the instance completed
            state = broker.partitions[1].state
            assert state.element_instances.get(created.process_instance_key) is None
            assert not broker.activate_jobs("mi-evals", "test", 60_000, 5, [])
        finally:
            await broker.stop()

    asyncio.run(scenario())


def test_after_a_restart_it_is_evaluated_once_more(tmp_path: Path, collection_evaluations: list[str]) -> None:
    async def first() -> None:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("evals.bpmn", SEQUENTIAL)])
            broker.create_instance("mi-evals", -1, -1, {"items": list(range(60))}, [])
            assert await _run_items(broker, 30) == [(n, n + 1) for n in range(30)]
        finally:
            await broker.stop()

    async def second() -> None:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            assert await _run_items(broker, 30) == [(n, n + 1) for n in range(30, 60)]
            assert not broker.activate_jobs("mi-evals", "test", 60_000, 5, [])
        finally:
            await broker.stop()

    asyncio.run(first())
    assert len(collection_evaluations) == 1
    asyncio.run(second())
    assert len(collection_evaluations) == 2
