"""Issue 8, "must show": random interleavings of accepted and rejected commands, commands that fail
half-way (an injected engine defect), unencodable documents, snapshots and kill -9 at random
points (optionally leaving a torn write behind). Afterwards every acknowledged command is in the
state and the log, nothing of a failed command is, and every partition's positions are dense.

Runs the real broker in-process (the code `python -m engine` runs); "kill -9" abandons it
without closing anything, which leaves exactly what the OS had been handed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.broker import Broker
from engine.log import LogReader, encode_entry, partition_ids
from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.processors.creation import CreateInstance
from engine.processing.registry import processor_for
from tests.engine.helpers import one_task_process

PARTITIONS = 2
OPERATIONS = st.sampled_from(
    [
        "create",
        "create",
        "create",
        "complete",
        "complete",
        "reject_unknown_process",
        "reject_unknown_job",
        "defect_half_way",
        "unencodable",
        "snapshot",
        "crash",
        "torn_crash",
    ]
)


class Model:
    """What the clients were told."""

    def __init__(self) -> None:
        self.created: set[int] = set()
        self.completed_jobs: set[int] = set()
        self.completed_instances: set[int] = set()
        self.defect_variables: set[str] = set()


def crash(broker: Broker) -> None:
    if broker._timer_task is not None:
        broker._timer_task.cancel()
    for partition in broker.partitions.values():
        if partition._flusher is not None:
            partition._flusher.cancel()
        partition._executor.shutdown(wait=True)


def tear_tail(data_dir: Path, partition_id: int) -> None:
    """A write cut short by the crash: half a frame of a batch nobody was answered for."""
    segment = sorted((data_dir / f"partition-{partition_id}").glob("segment-*.log"))[-1]
    frame = encode_entry(b'{"position":0,"recordType":"EVENT"}', True)
    with open(segment, "ab") as handle:
        handle.write(frame[: len(frame) // 2])


async def run_operations(data_dir: Path, operations: list[str], seed: int) -> Model:
    model = Model()
    broker = Broker(data_dir, PARTITIONS)
    await broker.start()
    await broker.deploy([("prop.bpmn", one_task_process("prop", "prop-work"))])
    counter = seed
    for operation in operations:
        counter += 1
        if operation == "create":
            partition, result, _ = broker.create_instance("prop", -1, -1, {"n": counter, "text": "é✓"}, [])
            await partition.durable()
            model.created.add(result.process_instance_key)
        elif operation == "complete":
            batches = broker.activate_jobs("prop-work", "w", 60_000, 1, [])
            for partition, jobs in batches:
                await partition.durable()
                for job in jobs:
                    partition.execute(Command("JOB", "COMPLETE", {"variables": {}}, key=job["key"]))
                    await partition.durable()
                    model.completed_jobs.add(job["key"])
                    model.completed_instances.add(job["processInstanceKey"])
        elif operation == "reject_unknown_process":
            with pytest.raises(Rejection):
                broker.create_instance("no-such-process", -1, -1, {}, [])
        elif operation == "reject_unknown_job":
            partition = broker.partitions[1 + counter % PARTITIONS]
            with pytest.raises(Rejection):
                partition.execute(Command("JOB", "COMPLETE", {}, key=(partition.partition_id << 51) + 10**9))
        elif operation == "defect_half_way":
            partition = broker.partitions[1 + counter % PARTITIONS]
            marker = f"defect-{counter}"
            model.defect_variables.add(marker)

            def half_way(ctx: ProcessingContext, command: Command, name: str = marker) -> None:
                create = processor_for("PROCESS_INSTANCE_CREATION", "CREATE")
                assert create is not None
                create(
                    ctx,
                    Command(
                        command.value_type,
                        command.intent,
                        request=CreateInstance("prop", variables={name: True}),
                    ),
                )
                ctx.drain()
                raise RuntimeError("injected defect after the events were written")

            with pytest.raises(Rejection) as failure:
                partition.execute(Command("PROCESS_INSTANCE_CREATION", "CREATE", {}), half_way)
            assert failure.value.rejection_type == "PROCESSING_ERROR"
        elif operation == "unencodable":
            with pytest.raises(Rejection):
                broker.create_instance("prop", -1, -1, {"bad": "\ud800"}, [])
        elif operation == "snapshot":
            for partition in broker.partitions.values():
                await partition.durable()
                partition._write_snapshot_now()
        elif operation in ("crash", "torn_crash"):
            crash(broker)
            if operation == "torn_crash":
                tear_tail(data_dir, 1 + counter % PARTITIONS)
            broker = Broker(data_dir, PARTITIONS)
            await broker.start()
    crash(broker)
    return model


async def recovered_state(data_dir: Path) -> dict[int, Any]:
    broker = Broker(data_dir, PARTITIONS)
    await broker.start()
    states = {pid: partition.state for pid, partition in broker.partitions.items()}
    crash(broker)
    return states


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=25), seed=st.integers(0, 10_000))
def test_acknowledged_commands_survive_any_interleaving_and_positions_stay_dense(
    tmp_path_factory: pytest.TempPathFactory, operations: list[str], seed: int
) -> None:
    data_dir = tmp_path_factory.mktemp("property")
    model = asyncio.run(run_operations(data_dir, operations, seed))
    states = asyncio.run(recovered_state(data_dir))

    records: list[dict[str, Any]] = []
    for partition_id in partition_ids(data_dir):
        found = LogReader(data_dir, partition_id).read(1, 10_000_000)  # raises on any gap
        assert [r["position"] for r in found] == list(range(1, len(found) + 1))
        records.extend(found)

    created = {
        r["key"]
        for r in records
        if r["valueType"] == "PROCESS_INSTANCE_CREATION" and r["intent"] == "CREATED"
    }
    assert model.created <= created
    completed = {r["key"] for r in records if r["valueType"] == "JOB" and r["intent"] == "COMPLETED"}
    assert model.completed_jobs <= completed
    live = {key for state in states.values() for key in state.element_instances}
    jobs = {key for state in states.values() for key in state.jobs}
    assert (model.created - model.completed_instances) <= live
    assert not (model.completed_jobs & jobs)
    assert not (model.completed_instances & live)
    # nothing of a command that failed half-way: no variable, no instance
    written_names = {r["value"].get("name") for r in records if r["valueType"] == "VARIABLE"}
    assert not (model.defect_variables & written_names)
    for state in states.values():
        for variables in state.variables.values():
            assert not (model.defect_variables & set(variables))
