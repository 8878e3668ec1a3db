"""A due BPMN timer whose TIMER TRIGGER failed is tried again (engine/broker.py, timer loop).

The broker's loop takes due timers from the partition's in-memory heap. A trigger that was
rejected or raised used to leave the timer in state but off the heap, so it did not fire until
a restart rebuilt the heap. Zeebe's DueDateTimerChecker reads due timers from the state at every
check: a timer that is still there is triggered again, and a TIMER TRIGGER rejected because the
timer no longer exists is final. Ours matches this. A timer still in state is tried again on a
later check, after a wait that doubles up to a maximum, so a timer that keeps failing does not
spin. A timer that no longer exists is dropped. A timer the partition's clock does not yet find
due goes back on the heap.

These run in process on the real broker, log and processing, on a temporary data directory. The
failure is injected where processing runs (the TIMER TRIGGER processor in the registry), so it
goes through `Partition.execute` as an engine defect would: no events are kept, and the command
is logged with a PROCESSING_ERROR rejection. Some tests stop the broker's loop and call
`check_timers` with their own clock, so the backoff is checked without any wall-clock timing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.broker import TIMER_RETRY_MAX_MS, TIMER_RETRY_MS, Broker
from engine.partition import Partition, now_ms
from engine.processing.command import Command
from engine.processing.context import ProcessingContext
from engine.processing.processors.timers import trigger_timer
from engine.processing.registry import PROCESSORS
from engine.records import PROCESSING_ERROR
from tests.engine.helpers import all_records, create_on, flow, process_xml, wait_until
from tests.support.bpmn import START, catch_event, end_event, timer_definition


def timer_process(process_id: str, duration: str) -> bytes:
    body = (
        START
        + catch_event("wait", "f0", "f1", timer_definition("timeDuration", duration))
        + end_event("end", "f1")
        + flow("f0", "start", "wait")
        + flow("f1", "wait", "end")
    )
    return process_xml(process_id, body)


class FailingTrigger:
    """Replaces the TIMER TRIGGER processor: the first `failures` calls raise (every call when
    None), as an engine defect or a transient failure would; the others run the real one."""

    def __init__(self, failures: int | None):
        self.failures = failures
        self.calls = 0

    def __call__(self, ctx: ProcessingContext, command: Command) -> Any:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise RuntimeError(f"TIMER TRIGGER failed (test fault, call {self.calls})")
        return trigger_timer(ctx, command)


def failing_trigger(monkeypatch: pytest.MonkeyPatch, failures: int | None) -> FailingTrigger:
    fault = FailingTrigger(failures)
    monkeypatch.setitem(PROCESSORS, ("TIMER", "TRIGGER"), fault)
    return fault


async def started_broker(data_dir: Path) -> Broker:
    broker = Broker(data_dir, 1)
    await broker.start()
    return broker


async def stop_loop(broker: Broker) -> None:
    """The test calls `check_timers` itself, with its own clock."""
    task = broker._timer_task
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def timer_records(data_dir: Path, timer_key: int) -> list[tuple[str, str, str]]:
    """(record type, intent, rejection type) of every TIMER record of that key, in log order."""
    return [
        (r["recordType"], r["intent"], r["rejectionType"] if r["recordType"] == "COMMAND_REJECTION" else "")
        for r in all_records(data_dir)
        if r["valueType"] == "TIMER" and r["key"] == timer_key
    ]


def completed(data_dir: Path, instance_key: int) -> bool:
    return any(
        r["recordType"] == "EVENT"
        and r["valueType"] == "PROCESS_INSTANCE"
        and r["intent"] == "ELEMENT_COMPLETED"
        and r["key"] == instance_key
        for r in all_records(data_dir)
    )


def only_timer(partition: Partition) -> tuple[int, int]:
    """(key, due date) of the partition's one timer."""
    [(timer_key, timer)] = partition.state.timers.items()
    return timer_key, timer.due_date


def test_a_timer_whose_trigger_failed_fires_on_a_later_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker's own loop: the first TIMER TRIGGER fails, and a later check fires the timer
    without a restart."""
    data = tmp_path / "data"
    fault = failing_trigger(monkeypatch, failures=1)

    async def scenario() -> tuple[int, int]:
        broker = await started_broker(data)
        await broker.deploy([("tr-once.bpmn", timer_process("tr-once", "PT0S"))])
        partition = broker.partitions[1]
        instance = await create_on(partition, "tr-once")
        timer_key, _ = only_timer(partition)
        await wait_until(lambda: fault.calls >= 1, "the first (failing) trigger")
        await wait_until(
            lambda: instance not in partition.state.element_instances, "the timer firing after the failure"
        )
        await broker.stop()
        return instance, timer_key

    instance, timer_key = asyncio.run(scenario())
    assert fault.calls == 2
    assert timer_records(data, timer_key) == [
        ("EVENT", "CREATED", ""),
        ("COMMAND", "TRIGGER", ""),
        ("COMMAND_REJECTION", "TRIGGER", PROCESSING_ERROR),
        ("COMMAND", "TRIGGER", ""),
        ("EVENT", "TRIGGERED", ""),
    ]
    assert completed(data, instance)


def test_a_failing_timer_is_tried_again_with_a_growing_wait_and_dropped_once_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every trigger fails: the timer is tried again after TIMER_RETRY_MS, then after a wait
    that doubles up to TIMER_RETRY_MAX_MS, never on the checks in between. Once the instance is
    canceled (TIMER CANCELED) the timer is gone and no TIMER TRIGGER is written for it again."""
    data = tmp_path / "data"
    fault = failing_trigger(monkeypatch, failures=None)
    waits = []
    wait = TIMER_RETRY_MS
    for _ in range(9):
        waits.append(wait)
        wait = min(wait * 2, TIMER_RETRY_MAX_MS)
    assert waits[-1] == TIMER_RETRY_MAX_MS  # the test reaches the maximum

    async def scenario() -> int:
        broker = await started_broker(data)
        await stop_loop(broker)
        await broker.deploy([("tr-always.bpmn", timer_process("tr-always", "PT0S"))])
        partition = broker.partitions[1]
        instance = await create_on(partition, "tr-always")
        timer_key, due_date = only_timer(partition)
        clock = max(now_ms(), due_date)
        broker.check_timers(clock)
        assert fault.calls == 1
        for attempt, wait in enumerate(waits, start=2):
            broker.check_timers(clock + 1)
            broker.check_timers(clock + wait - 1)
            assert fault.calls == attempt - 1, f"tried again before its {wait} ms wait"
            clock += wait
            broker.check_timers(clock)
            assert fault.calls == attempt, f"not tried again after {wait} ms"
            assert timer_key in partition.state.timers
        partition.execute(
            Command("PROCESS_INSTANCE", "CANCEL", {"processInstanceKey": instance}, key=instance)
        )
        assert timer_key not in partition.state.timers
        tried = fault.calls
        for later in (TIMER_RETRY_MAX_MS, 2 * TIMER_RETRY_MAX_MS, 10 * TIMER_RETRY_MAX_MS):
            broker.check_timers(clock + later)
        assert fault.calls == tried
        await broker.stop()
        return timer_key

    timer_key = asyncio.run(scenario())
    records = timer_records(data, timer_key)
    attempts = len(waits) + 1
    assert records[0] == ("EVENT", "CREATED", "")
    assert (
        records[1:-1]
        == [
            ("COMMAND", "TRIGGER", ""),
            ("COMMAND_REJECTION", "TRIGGER", PROCESSING_ERROR),
        ]
        * attempts
    )
    assert records[-1] == ("EVENT", "CANCELED", "")


def test_a_timer_the_partitions_clock_finds_not_yet_due_stays_armed(tmp_path: Path) -> None:
    """The loop's clock ahead of the partition's (the processor never fires a timer early, by
    the partition's clock): the trigger writes nothing, and the timer fires on a later check
    once the partition's clock has reached its due date."""
    data = tmp_path / "data"

    async def scenario() -> tuple[int, int]:
        broker = await started_broker(data)
        await stop_loop(broker)
        await broker.deploy([("tr-early.bpmn", timer_process("tr-early", "PT1H"))])
        partition = broker.partitions[1]
        instance = await create_on(partition, "tr-early")
        timer_key, due_date = only_timer(partition)
        broker.check_timers(due_date)  # the partition's clock is an hour behind
        assert timer_key in partition.state.timers
        assert instance in partition.state.element_instances
        partition.now = lambda: due_date  # the partition's clock has reached it
        broker.check_timers(due_date + 1)
        assert instance not in partition.state.element_instances
        await broker.stop()
        return instance, timer_key

    instance, timer_key = asyncio.run(scenario())
    assert timer_records(data, timer_key) == [
        ("EVENT", "CREATED", ""),
        ("COMMAND", "TRIGGER", ""),
        ("COMMAND", "TRIGGER", ""),
        ("EVENT", "TRIGGERED", ""),
    ]
    assert completed(data, instance)
