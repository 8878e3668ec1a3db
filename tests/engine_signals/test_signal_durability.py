"""Signal broadcasts survive a crash (engine/processing/signal_state.py, engine/broker.py):
a broadcast written on its origin partition reaches every other partition exactly once, even
when the engine dies before the distribution (kill -9), and a delivery that failed at runtime
is tried again from the timer loop. Both a BroadcastSignal and a signal thrown by a process.
A restart never runs a broadcast twice: not after a complete distribution (whatever the
snapshots), not when partition 1 lost a broadcast another partition has, not from a snapshot
of an engine that kept no distribution state.

In process on the real broker, log and recovery (the code `python -m engine` runs): the engine
has no fault point for crash tests, so "killed after partition 1 wrote it" is a distribution
that fails on the other partitions followed by what kill -9 leaves (the bytes handed to the
OS, no final snapshot, nothing closed), then a new broker on the same data directory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.broker import Broker
from engine.partition import Partition
from engine.processing.command import Command, Rejection
from engine.processing.processors.signals import BroadcastSignal
from engine.processing.triggers.signals import signal_value
from tests.engine.helpers import all_records, create_on, flow, process_xml, wait_until
from tests.support.bpmn import START, catch_event, end_event, start_event, throw_event


def signal_definition(name: str) -> tuple[str, str]:
    """(the <signal> declaration, the event definition referring to it)."""
    return (
        f'<bpmn:signal id="sig" name="{name}"/>',
        '<bpmn:signalEventDefinition signalRef="sig"/>',
    )


def catch_process(process_id: str, signal_name: str) -> bytes:
    declaration, definition = signal_definition(signal_name)
    body = (
        START
        + catch_event("wait", "f0", "f1", definition)
        + end_event("end", "f1")
        + flow("f0", "start", "wait")
        + flow("f1", "wait", "end")
    )
    return process_xml(process_id, body, declaration)


def signal_start_process(process_id: str, signal_name: str) -> bytes:
    declaration, definition = signal_definition(signal_name)
    body = start_event("go", "f0", definition=definition) + end_event("end", "f0") + flow("f0", "go", "end")
    return process_xml(process_id, body, declaration)


def throw_process(process_id: str, signal_name: str) -> bytes:
    declaration, definition = signal_definition(signal_name)
    body = (
        START
        + throw_event("shout", "f0", "f1", definition)
        + end_event("end", "f1")
        + flow("f0", "start", "shout")
        + flow("f1", "shout", "end")
    )
    return process_xml(process_id, body, declaration)


async def started_broker(data_dir: Path, partitions: int) -> Broker:
    broker = Broker(data_dir, partitions)
    await broker.start()
    return broker


def crash(broker: Broker) -> None:
    """What kill -9 leaves: the bytes handed to the OS, no final snapshot, nothing closed."""
    if broker._timer_task is not None:
        broker._timer_task.cancel()
    for task in list(getattr(broker, "_signal_tasks", ())):
        task.cancel()
    for partition in broker.partitions.values():
        if partition._flusher is not None:
            partition._flusher.cancel()
        partition._executor.shutdown(wait=True)


def refuse_signals(partition: Partition) -> Callable[[bool], None]:
    """Make every SIGNAL command on `partition` fail (the engine killed before it got there, or
    a delivery that fails at runtime); returns the switch that turns the fault on and off."""
    real_execute = partition.execute
    failing = [True]

    def execute(command: Command, handler: Any = None) -> Any:
        if failing[0] and command.value_type == "SIGNAL":
            raise RuntimeError(f"partition {partition.partition_id} is gone (test fault)")
        return real_execute(command, handler)

    partition.execute = execute  # type: ignore[method-assign]

    def switch(on: bool) -> None:
        failing[0] = on

    return switch


async def all_durable(broker: Broker) -> None:
    await asyncio.gather(*(partition.durable() for partition in broker.partitions.values()))


def broadcasted(data_dir: Path, signal_name: str) -> list[tuple[int, int]]:
    """(partition, key) of every SIGNAL BROADCASTED of that name in the logs."""
    return sorted(
        (r["partitionId"], r["key"])
        for r in all_records(data_dir)
        if r["recordType"] == "EVENT"
        and r["valueType"] == "SIGNAL"
        and r["intent"] == "BROADCASTED"
        and r["value"]["signalName"] == signal_name
    )


def completed(data_dir: Path, instance_key: int, element_id: str) -> int:
    """How many times that element of the instance completed (a catch event triggered twice
    would not complete twice, but its instance would leave twice: both are counted)."""
    return sum(
        1
        for r in all_records(data_dir)
        if r["recordType"] == "EVENT"
        and r["valueType"] == "PROCESS_INSTANCE"
        and r["intent"] == "ELEMENT_COMPLETED"
        and r["value"]["processInstanceKey"] == instance_key
        and r["value"]["elementId"] == element_id
    )


def started_by_signal(data_dir: Path, process_id: str) -> int:
    return sum(
        1
        for r in all_records(data_dir)
        if r["recordType"] == "EVENT"
        and r["valueType"] == "PROCESS_INSTANCE"
        and r["intent"] == "ELEMENT_ACTIVATED"
        and r["value"]["bpmnProcessId"] == process_id
        and r["value"]["bpmnElementType"] == "PROCESS"
    )


def assert_once_everywhere(data_dir: Path, signal_name: str, partitions: int) -> int:
    """One SIGNAL BROADCASTED of the name on every partition, all under one key; returns it."""
    found = broadcasted(data_dir, signal_name)
    assert [partition for partition, _ in found] == list(range(1, partitions + 1)), found
    keys = {key for _, key in found}
    assert len(keys) == 1, found
    return keys.pop()


async def listeners(broker: Broker, process_id: str) -> list[int]:
    """One waiting catch-event instance per partition."""
    return [await create_on(partition, process_id) for partition in broker.partitions.values()]


def test_a_broadcast_killed_after_partition_1_reaches_the_others_after_the_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def scenario() -> tuple[list[int], int]:
        broker = await started_broker(data, 3)
        await broker.deploy([("sd-catch.bpmn", catch_process("sd-catch", "sd-rack-down"))])
        await broker.deploy([("sd-start.bpmn", signal_start_process("sd-start", "sd-rack-down"))])
        waiting = await listeners(broker, "sd-catch")
        for partition_id in (2, 3):
            refuse_signals(broker.partitions[partition_id])
        key = broker.broadcast_signal("sd-rack-down", {"rack": "R7"})
        await broker.partitions[1].durable()
        crash(broker)  # partitions 2 and 3 never wrote it

        restarted = await started_broker(data, 3)
        await all_durable(restarted)
        assert assert_once_everywhere(data, "sd-rack-down", 3) == key
        assert [completed(data, instance, "wait") for instance in waiting] == [1, 1, 1]
        assert started_by_signal(data, "sd-start") == 1  # the start event on partition 1, once
        first = restarted.partitions[1].state.signal_state
        await wait_until(lambda: not first.undistributed, "partition 1 forgetting the broadcast")
        await restarted.stop()
        return waiting, key

    waiting, key = asyncio.run(scenario())
    # and nothing more after the clean stop
    assert assert_once_everywhere(data, "sd-rack-down", 3) == key
    assert [completed(data, instance, "wait") for instance in waiting] == [1, 1, 1]


def test_a_restart_after_a_complete_distribution_broadcasts_nothing_again(tmp_path: Path) -> None:
    """Fully distributed, forgotten by partition 1, then killed: partition 1 replays its
    broadcast from the log (its snapshot is older) while partition 2 restarts from a snapshot
    taken after it; the broadcast still is not run a second time anywhere."""
    data = tmp_path / "data"

    async def scenario() -> list[int]:
        broker = await started_broker(data, 2)
        await broker.deploy([("sd-again.bpmn", catch_process("sd-again", "sd-once"))])
        await broker.deploy([("sd-again-start.bpmn", signal_start_process("sd-again-start", "sd-once"))])
        waiting = await listeners(broker, "sd-again")
        key = broker.broadcast_signal("sd-once", {})
        await all_durable(broker)
        first = broker.partitions[1].state.signal_state
        await wait_until(lambda: not first.undistributed, "partition 1 forgetting the distributed broadcast")
        await all_durable(broker)
        broker.partitions[2]._write_snapshot_now()
        crash(broker)

        for _ in range(2):  # after the kill, and once more after a clean stop (snapshots)
            restarted = await started_broker(data, 2)
            await all_durable(restarted)
            assert not restarted.partitions[1].state.signal_state.undistributed
            await restarted.stop()
        # and handed the same broadcast once more, partition 2 refuses it
        restarted = await started_broker(data, 2)
        with pytest.raises(Rejection) as refused:
            restarted.partitions[2].execute(
                Command(
                    "SIGNAL",
                    "BROADCAST",
                    signal_value("sd-once", {}),
                    key=key,
                    request=BroadcastSignal("sd-once", {}, distributed=True),
                )
            )
        assert refused.value.rejection_type == "ALREADY_EXISTS"
        await restarted.stop()
        return waiting

    waiting = asyncio.run(scenario())
    assert_once_everywhere(data, "sd-once", 2)
    assert [completed(data, instance, "wait") for instance in waiting] == [1, 1]
    assert started_by_signal(data, "sd-again-start") == 1


def test_a_broadcast_partition_1_lost_does_not_hide_the_next_one(tmp_path: Path) -> None:
    """Killed after partition 2 wrote a broadcast but before partition 1's log had it (the
    gateway distributes before it waits for the fsyncs): after the restart partition 1 must not
    hand out that key again, or partition 2 would take the next broadcast for a repeat."""
    data = tmp_path / "data"

    async def scenario() -> list[int]:
        broker = await started_broker(data, 2)
        await broker.deploy([("sd-lost.bpmn", catch_process("sd-lost", "sd-next"))])
        waiting = await listeners(broker, "sd-lost")
        await all_durable(broker)
        first = broker.partitions[1]
        assert first._flusher is not None
        first._flusher.cancel()  # partition 1 writes nothing more
        broker.broadcast_signal("sd-lost", {})
        await broker.partitions[2].durable()
        crash(broker)

        restarted = await started_broker(data, 2)
        assert [partition for partition, _ in broadcasted(data, "sd-lost")] == [2]
        key = restarted.broadcast_signal("sd-next", {})
        await all_durable(restarted)
        assert assert_once_everywhere(data, "sd-next", 2) == key
        await restarted.stop()
        return waiting

    waiting = asyncio.run(scenario())
    assert [completed(data, instance, "wait") for instance in waiting] == [1, 1]


def test_a_snapshot_without_the_distribution_state_is_replaced_by_the_log(tmp_path: Path) -> None:
    """A snapshot written by an engine that kept no distribution state cannot tell what its
    partition received: the partition replays its log instead, and nothing runs twice."""
    data = tmp_path / "data"

    async def scenario() -> list[int]:
        broker = await started_broker(data, 2)
        await broker.deploy([("sd-old.bpmn", catch_process("sd-old", "sd-old"))])
        waiting = await listeners(broker, "sd-old")
        broker.broadcast_signal("sd-old", {})
        await all_durable(broker)
        crash(broker)  # partition 1 has no snapshot: it replays the broadcast as undistributed
        restarted = await started_broker(data, 2)
        await restarted.stop()  # partition 2's snapshot, made old below
        path = data / "partition-2" / "snapshot.json"
        snapshot = json.loads(path.read_text())
        del snapshot["signalDistribution"]
        path.write_text(json.dumps(snapshot))
        (data / "partition-1" / "snapshot.json").unlink()

        restarted = await started_broker(data, 2)
        assert restarted.partitions[2].state.signal_state.received  # from the log
        await restarted.stop()
        return waiting

    waiting = asyncio.run(scenario())
    assert_once_everywhere(data, "sd-old", 2)
    assert [completed(data, instance, "wait") for instance in waiting] == [1, 1]


def test_a_failed_delivery_is_tried_again_at_runtime_in_order(tmp_path: Path) -> None:
    """Partition 2 refuses two broadcasts; once it takes commands again the timer loop
    delivers both, the older first, without a restart."""
    data = tmp_path / "data"

    async def scenario() -> tuple[list[int], list[int]]:
        broker = await started_broker(data, 2)
        await broker.deploy([("sd-retry-a.bpmn", catch_process("sd-retry-a", "sd-retry-a"))])
        await broker.deploy([("sd-retry-b.bpmn", catch_process("sd-retry-b", "sd-retry-b"))])
        waiting_a = await listeners(broker, "sd-retry-a")
        waiting_b = await listeners(broker, "sd-retry-b")
        fault = refuse_signals(broker.partitions[2])
        first = broker.broadcast_signal("sd-retry-a", {})
        second = broker.broadcast_signal("sd-retry-b", {})
        assert first < second
        await all_durable(broker)
        second_instances = broker.partitions[2].state.element_instances
        assert waiting_a[1] in second_instances and waiting_b[1] in second_instances  # still waiting
        fault(False)
        await wait_until(
            lambda: waiting_a[1] not in second_instances and waiting_b[1] not in second_instances,
            "the retried deliveries",
        )
        await all_durable(broker)
        await wait_until(lambda: not broker.partitions[1].state.signal_state.undistributed, "forgotten")
        await broker.stop()
        return waiting_a, waiting_b

    waiting_a, waiting_b = asyncio.run(scenario())
    a = assert_once_everywhere(data, "sd-retry-a", 2)
    b = assert_once_everywhere(data, "sd-retry-b", 2)
    on_second = [
        r["key"]
        for r in all_records(data)
        if r["partitionId"] == 2 and r["valueType"] == "SIGNAL" and r["recordType"] == "EVENT"
    ]
    assert on_second == [a, b]  # delivered in key order
    assert [completed(data, instance, "wait") for instance in waiting_a + waiting_b] == [1, 1, 1, 1]


@pytest.mark.parametrize("refused", [(1, 3), (3,)], ids=["killed-before-any", "killed-after-partition-1"])
def test_a_thrown_signal_killed_before_its_distribution_reaches_every_partition_once(
    tmp_path: Path, refused: tuple[int, ...]
) -> None:
    """A process on partition 2 throws; the engine dies before the other partitions (or all but
    partition 1) got the broadcast. After the restart the others get it, partition 1 not a
    second time, and partition 2 (where it was thrown) had it with the throw, once."""
    data = tmp_path / "data"

    async def scenario() -> list[int]:
        broker = await started_broker(data, 3)
        await broker.deploy([("sd-listen.bpmn", catch_process("sd-listen", "sd-thrown"))])
        await broker.deploy([("sd-listen-start.bpmn", signal_start_process("sd-listen-start", "sd-thrown"))])
        await broker.deploy([("sd-thrower.bpmn", throw_process("sd-thrower", "sd-thrown"))])
        waiting = await listeners(broker, "sd-listen")
        for partition_id in refused:
            refuse_signals(broker.partitions[partition_id])
        thrower = await create_on(broker.partitions[2], "sd-thrower")
        reached = [
            (broker.partitions[partition_id].state, waiting[partition_id - 1])
            for partition_id in (1, 2, 3)
            if partition_id not in refused
        ]
        await wait_until(
            lambda: all(listener not in state.element_instances for state, listener in reached),
            "the partitions that take the signal",
        )
        await all_durable(broker)
        crash(broker)  # the refusing partitions never wrote it

        restarted = await started_broker(data, 3)
        await all_durable(restarted)
        key = assert_once_everywhere(data, "sd-thrown", 3)
        assert key >> 51 == 2  # the throwing partition is the broadcast's origin
        assert completed(data, thrower, "shout") == 1
        assert [completed(data, instance, "wait") for instance in waiting] == [1, 1, 1]
        assert started_by_signal(data, "sd-listen-start") == 1
        origin = restarted.partitions[2].state.signal_state
        await wait_until(lambda: not origin.undistributed, "partition 2 forgetting the broadcast")
        await restarted.stop()
        return waiting

    waiting = asyncio.run(scenario())
    assert_once_everywhere(data, "sd-thrown", 3)
    assert [completed(data, instance, "wait") for instance in waiting] == [1, 1, 1]
