"""Follow-up commands (issue 15): the engine logs the ACTIVATE_ELEMENT / COMPLETE_ELEMENT
commands it writes for itself, as Zeebe does, inside the batch of the command that caused them;
every event's sourceRecordPosition names the command it came from. In process, on the real
broker, log and recovery (the code `python -m engine` runs)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.broker import Broker
from engine.log import LogReader
from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.processors.creation import CreateInstance
from engine.processing.registry import processor_for
from engine.processing.state import PartitionState
from engine.records import COMMAND, EVENT, encode_key, make_record
from tests.engine.helpers import one_task_process
from tests.support.bpmn import flow, process_xml, service_task


def fork_join_process(process_id: str) -> bytes:
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:parallelGateway id="fork"><bpmn:incoming>f0</bpmn:incoming>'
        "<bpmn:outgoing>fa</bpmn:outgoing><bpmn:outgoing>fb</bpmn:outgoing></bpmn:parallelGateway>"
        + service_task("a", "work-a", "fa", "ja")
        + service_task("b", "work-b", "fb", "jb")
        + '<bpmn:parallelGateway id="join"><bpmn:incoming>ja</bpmn:incoming>'
        "<bpmn:incoming>jb</bpmn:incoming><bpmn:outgoing>fe</bpmn:outgoing></bpmn:parallelGateway>"
        '<bpmn:endEvent id="end"><bpmn:incoming>fe</bpmn:incoming></bpmn:endEvent>'
        + flow("f0", "start", "fork")
        + flow("fa", "fork", "a")
        + flow("fb", "fork", "b")
        + flow("ja", "a", "join")
        + flow("jb", "b", "join")
        + flow("fe", "join", "end")
    )
    return process_xml(process_id, body)


def read_log(data_dir: Path) -> list[dict[str, Any]]:
    return LogReader(data_dir, 1).read()


def check_sources(records: list[dict[str, Any]]) -> None:
    """Dense positions; every source is an earlier COMMAND of the same batch."""
    assert [r["position"] for r in records] == list(range(1, len(records) + 1))
    by_position = {r["position"]: r for r in records}
    for record in records:
        source = record["sourceRecordPosition"]
        if source != -1:
            assert source < record["position"]
            assert by_position[source]["recordType"] == COMMAND


def complete_job(broker: Broker, job_key: int) -> None:
    broker.partitions[1].execute(Command("JOB", "COMPLETE", {"variables": {}}, key=job_key))


def job_of(broker: Broker, job_type: str) -> int:
    return next(key for key, job in broker.partitions[1].state.jobs.items() if job.value["type"] == job_type)


def test_parallel_fork_and_join_follow_up_commands(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("fork.bpmn", fork_join_process("fork-join"))])
            partition, _, _ = broker.create_instance("fork-join", -1, -1, {}, [])
            complete_job(broker, job_of(broker, "work-a"))
            complete_job(broker, job_of(broker, "work-b"))
            await partition.durable()
        finally:
            await broker.stop()
        return read_log(tmp_path / "data")

    records = asyncio.run(scenario())
    check_sources(records)
    # A gateway completes inside its activation (Zeebe's gateway processors); the fork takes
    # both flows, each target's key is taken with its flow and the ACTIVATE_ELEMENT command
    # carries it (Zeebe's activateElementInstanceInFlowScope).
    fork_activate = next(
        r for r in records if r["intent"] == "ACTIVATE_ELEMENT" and r["value"]["elementId"] == "fork"
    )
    from_fork = [r for r in records if r["sourceRecordPosition"] == fork_activate["position"]]
    assert [(r["recordType"], r["intent"], r["value"]["elementId"]) for r in from_fork] == [
        (EVENT, "ELEMENT_ACTIVATING", "fork"),
        (EVENT, "ELEMENT_ACTIVATED", "fork"),
        (EVENT, "ELEMENT_COMPLETING", "fork"),
        (EVENT, "ELEMENT_COMPLETED", "fork"),
        (EVENT, "SEQUENCE_FLOW_TAKEN", "fa"),
        (COMMAND, "ACTIVATE_ELEMENT", "a"),
        (EVENT, "SEQUENCE_FLOW_TAKEN", "fb"),
        (COMMAND, "ACTIVATE_ELEMENT", "b"),
    ]
    flow_a, activate_a, flow_b, activate_b = from_fork[4:]
    assert activate_a["key"] == flow_a["key"] + 1 and flow_b["key"] == activate_a["key"] + 1
    assert activate_b["key"] == flow_b["key"] + 1
    for command in (activate_a, activate_b):
        events = [r for r in records if r["sourceRecordPosition"] == command["position"]]
        assert events[0]["intent"] == "ELEMENT_ACTIVATING" and events[0]["key"] == command["key"]
        assert events[0]["value"] == command["value"]
    # The join is activated once, by the command written when its last incoming flow was taken,
    # and the process completes through its own COMPLETE_ELEMENT command.
    join_activations = [
        r for r in records if r["intent"] == "ACTIVATE_ELEMENT" and r["value"]["elementId"] == "join"
    ]
    assert len(join_activations) == 1
    process_complete = [
        r for r in records if r["intent"] == "COMPLETE_ELEMENT" and r["value"]["bpmnElementType"] == "PROCESS"
    ]
    assert len(process_complete) == 1
    completed = next(
        r
        for r in records
        if r["intent"] == "ELEMENT_COMPLETED" and r["value"]["bpmnElementType"] == "PROCESS"
    )
    assert completed["sourceRecordPosition"] == process_complete[0]["position"]


def test_replay_applies_events_only(tmp_path: Path) -> None:
    """A recovered partition (whole log replayed, no snapshot) has exactly the state of the live
    one: the logged follow-up commands are not executed again; the instance then finishes."""
    data_dir = tmp_path / "data"

    async def first() -> tuple[dict[str, Any], int]:
        broker = Broker(data_dir, 1)
        await broker.start()
        try:
            await broker.deploy([("one.bpmn", one_task_process("one", "work-one"))])
            partition, _, _ = broker.create_instance("one", -1, -1, {"x": 1}, [])
            await partition.durable()
            return partition.state.to_snapshot(), partition.state.next_local_key
        finally:
            await broker.stop()

    async def second() -> tuple[dict[str, Any], int, int]:
        broker = Broker(data_dir, 1)
        await broker.start()
        try:
            partition = broker.partitions[1]
            state, next_key = partition.state.to_snapshot(), partition.state.next_local_key
            records_before = len(read_log(data_dir))
            complete_job(broker, job_of(broker, "work-one"))
            await partition.durable()
            return state, next_key, records_before
        finally:
            await broker.stop()

    live_state, live_next_key = asyncio.run(first())
    (data_dir / "partition-1" / "snapshot.json").unlink()  # replay everything
    replayed_state, replayed_next_key, records_before = asyncio.run(second())
    assert replayed_state == live_state and replayed_next_key == live_next_key
    records = read_log(data_dir)
    check_sources(records)
    commands = [r for r in records[:records_before] if r["recordType"] == COMMAND]
    assert [r["intent"] for r in commands if r["valueType"] == "PROCESS_INSTANCE"] == [
        "ACTIVATE_ELEMENT",  # process
        "ACTIVATE_ELEMENT",  # start event
        "COMPLETE_ELEMENT",  # start event
        "ACTIVATE_ELEMENT",  # task
    ]
    tail = [(r["recordType"], r["intent"], r["value"].get("elementId")) for r in records[records_before:]]
    assert tail[:3] == [
        (COMMAND, "COMPLETE", None),
        (EVENT, "COMPLETED", "task"),
        (COMMAND, "COMPLETE_ELEMENT", "task"),
    ]
    assert tail[-1] == (EVENT, "ELEMENT_COMPLETED", "one")
    # nothing of the first part was activated a second time
    activating = [r["key"] for r in records if r["intent"] == "ELEMENT_ACTIVATING"]
    assert len(activating) == len(set(activating)) == 4


def test_follow_up_commands_of_a_failed_command_are_dropped(tmp_path: Path) -> None:
    """A command that fails half-way, after its follow-up commands were logged and processed,
    keeps none of them: the log holds the command and its PROCESSING_ERROR rejection only, and
    the next command's positions follow densely."""

    async def scenario() -> tuple[list[dict[str, Any]], PartitionState]:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("one.bpmn", one_task_process("one", "work-one"))])
            partition = broker.partitions[1]
            before = partition.state.next_local_key

            def half_way(ctx: ProcessingContext, command: Command) -> None:
                create = processor_for("PROCESS_INSTANCE_CREATION", "CREATE")
                assert create is not None
                create(ctx, Command(command.value_type, command.intent, request=CreateInstance("one")))
                ctx.drain()
                assert ctx.state.jobs  # the follow-ups ran: the task's job exists
                raise RuntimeError("injected defect")

            with pytest.raises(Rejection) as failure:
                partition.execute(Command("PROCESS_INSTANCE_CREATION", "CREATE", {}), half_way)
            assert failure.value.rejection_type == "PROCESSING_ERROR"
            assert partition.state.next_local_key == before and not partition.state.jobs
            broker.create_instance("one", -1, -1, {}, [])
            await partition.durable()
            return read_log(tmp_path / "data"), partition.state
        finally:
            await broker.stop()

    records, state = asyncio.run(scenario())
    check_sources(records)
    failed_at = next(r["position"] for r in records if r["recordType"] == "COMMAND_REJECTION")
    failed = records[failed_at - 2 : failed_at]
    assert [(r["recordType"], r["intent"]) for r in failed] == [
        (COMMAND, "CREATE"),
        ("COMMAND_REJECTION", "CREATE"),
    ]
    later = records[failed_at:]
    assert later[0]["intent"] == "CREATE" and later[0]["sourceRecordPosition"] == -1
    assert [r["intent"] for r in later if r["recordType"] == COMMAND][1:] == [
        "ACTIVATE_ELEMENT",
        "ACTIVATE_ELEMENT",
        "COMPLETE_ELEMENT",
        "ACTIVATE_ELEMENT",
    ]
    assert len(state.jobs) == 1


def test_a_rejected_command_keeps_no_follow_up_command(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("one.bpmn", one_task_process("one", "work-one"))])
            partition = broker.partitions[1]

            def refuse_late(ctx: ProcessingContext, command: Command) -> None:
                create = processor_for("PROCESS_INSTANCE_CREATION", "CREATE")
                assert create is not None
                create(ctx, Command(command.value_type, command.intent, request=CreateInstance("one")))
                raise Rejection("CREATE", "INVALID_STATE", "refused after queuing follow-ups")

            with pytest.raises(Rejection):
                partition.execute(Command("PROCESS_INSTANCE_CREATION", "CREATE", {}), refuse_late)
            assert not partition.state.element_instances
            await partition.durable()
            return read_log(tmp_path / "data")
        finally:
            await broker.stop()

    records = asyncio.run(scenario())
    check_sources(records)
    assert [(r["recordType"], r["intent"]) for r in records[-2:]] == [
        (COMMAND, "CREATE"),
        ("COMMAND_REJECTION", "CREATE"),
    ]
    assert not [r for r in records if r["intent"] == "ACTIVATE_ELEMENT"]


def test_only_follow_up_commands_move_the_key_generator() -> None:
    """A follow-up command's key was taken by this partition (a flow's target that may never be
    activated if its scope ends first): replay must not hand it out again. A client command's
    key is the client's and moves nothing."""
    state = PartitionState(1)

    def command(key: int, source: int, position: int) -> dict[str, Any]:
        record = make_record(
            partition_id=1,
            key=key,
            value_type="PROCESS_INSTANCE",
            intent="ACTIVATE_ELEMENT",
            value={},
            timestamp=0,
            record_type=COMMAND,
            source_record_position=source,
        )
        record["position"] = position
        return record

    start = state.next_local_key
    state.apply(command(encode_key(1, start + 50), -1, 1))  # a client's command
    assert state.next_local_key == start
    state.apply(command(encode_key(1, start + 7), 1, 2))  # written by the engine itself
    assert state.next_local_key == start + 8
    state.apply(command(encode_key(2, start + 90), 1, 3))  # another partition's key
    assert state.next_local_key == start + 8 and state.last_position == 3
