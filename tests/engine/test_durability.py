"""Issue 8, durability: dense positions whatever fails, commands all-or-nothing, bad documents
rejected before they reach the log, damage in the middle of a log refuses to start (with
`python -m engine check-log` as the way out), and an unreadable snapshot falls back to replay.

Most tests drive the real broker in-process (the same code `python -m engine` runs) because
they need to reach inside a command; the ones about start-up and status codes use the real
`python -m engine` process over gRPC."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb

from engine.broker import Broker
from engine.log import LogCorruption, LogReader, LogWriter, encode_entry
from engine.partition import Partition
from engine.processing.command import Command, Rejection
from engine.processing.processors.creation import CreateInstance
from tests.engine.conftest import REPO_ROOT, EngineProcess
from tests.engine.helpers import all_records, deploy, gateway, one_task_process, process_xml

OUTPUT_BPMN = process_xml(
    "output-flow",
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    '<bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="output-work"/>'
    '<zeebe:ioMapping><zeebe:output source="=from json(&quot;\\&quot;\\\\ud800\\&quot;&quot;)" target="bad"/>'
    "</zeebe:ioMapping></bpmn:extensionElements>"
    "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>"
    '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>',
)


def positions(data_dir: Path) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {}
    for record in all_records(data_dir):
        result.setdefault(record["partitionId"], []).append(record["position"])
    return result


def assert_dense(data_dir: Path) -> None:
    for partition_id, found in positions(data_dir).items():
        assert found == list(range(1, len(found) + 1)), f"partition {partition_id} has a gap"


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def started_broker(data_dir: Path, partitions: int = 1) -> Broker:
    broker = Broker(data_dir, partitions)
    await broker.start()
    return broker


def crash(broker: Broker) -> None:
    """What kill -9 leaves: the bytes handed to the OS, no final snapshot, nothing closed."""
    if broker._timer_task is not None:
        broker._timer_task.cancel()
    for partition in broker.partitions.values():
        if partition._flusher is not None:
            partition._flusher.cancel()
        partition._executor.shutdown(wait=True)


async def deploy_one_task(broker: Broker, process_id: str = "dur", job_type: str = "dur-work") -> None:
    await broker.deploy([(f"{process_id}.bpmn", one_task_process(process_id, job_type))])


async def create(broker: Broker, variables: dict[str, Any], process_id: str = "dur") -> int:
    partition, result, _ = broker.create_instance(process_id, -1, -1, variables, [])
    await partition.durable()
    return result.process_instance_key


# ---------------------------------------------------------------------- dense positions, atomicity
def test_a_record_that_cannot_be_encoded_takes_no_position_and_the_command_keeps_nothing(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        broker = await started_broker(tmp_path)
        await deploy_one_task(broker)
        partition = broker.partitions[1]
        before = await create(broker, {"n": 1})
        # The engine's last line of defence: a value the gateway would have refused reaches
        # the partition (a variable with a lone surrogate, written after a good one).
        with pytest.raises(Rejection) as failure:
            partition.execute(
                Command(
                    "PROCESS_INSTANCE_CREATION",
                    "CREATE",
                    {"bpmnProcessId": "dur"},
                    request=CreateInstance("dur", variables={"good": 1, "bad": "\ud800"}),
                )
            )
        assert failure.value.rejection_type == "PROCESSING_ERROR"
        await partition.durable()
        after = await create(broker, {"n": 2})
        assert set(partition.state.element_instances) >= {before, after}
        # nothing of the failed command survives: no instance, no variable, no job
        assert [v for v in partition.state.variables.values() if "good" in v] == []
        assert len(partition.state.jobs) == 2
        await broker.stop()

    run(scenario())
    assert_dense(tmp_path)
    records = all_records(tmp_path)
    assert not any(r["valueType"] == "VARIABLE" and r["value"]["name"] == "good" for r in records)
    rejected = [r for r in records if r["recordType"] == "COMMAND_REJECTION"]
    assert [r["rejectionType"] for r in rejected] == ["PROCESSING_ERROR"]


def test_after_a_failed_command_and_a_crash_every_acknowledged_instance_is_recovered(tmp_path: Path) -> None:
    async def first_life() -> list[int]:
        broker = await started_broker(tmp_path)
        await deploy_one_task(broker)
        partition = broker.partitions[1]
        keys = [await create(broker, {"n": n}) for n in range(5)]
        with pytest.raises(Rejection):
            partition.execute(
                Command(
                    "PROCESS_INSTANCE_CREATION",
                    "CREATE",
                    {},
                    request=CreateInstance("dur", variables={"x": "\udfff"}),
                )
            )
        partition._write_snapshot_now()  # a periodic snapshot after the failure
        keys += [await create(broker, {"n": n}) for n in range(5, 21)]
        crash(broker)
        return keys

    async def second_life() -> set[int]:
        broker = await started_broker(tmp_path)
        found = set(broker.partitions[1].state.element_instances)
        crash(broker)
        return found

    acknowledged = run(first_life())
    assert set(acknowledged) <= run(second_life())
    assert_dense(tmp_path)


def test_complete_job_whose_output_mapping_cannot_be_stored_raises_an_incident(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "output.bpmn", OUTPUT_BPMN)
        key = stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId="output-flow", version=-1, variables="{}"),
            timeout=10,
        ).processInstanceKey
        jobs = [
            job
            for response in stub.ActivateJobs(
                pb.ActivateJobsRequest(
                    type="output-work", worker="w", timeout=60_000, maxJobsToActivate=1, requestTimeout=5000
                ),
                timeout=15,
            )
            for job in response.jobs
        ]
        assert len(jobs) == 1
        stub.CompleteJob(
            pb.CompleteJobRequest(jobKey=jobs[0].key, variables="{}"), timeout=10
        )  # OK, as in Zeebe
    records = [r for r in all_records(engine.data_dir) if r["value"].get("processInstanceKey") == key]
    incidents = [r for r in records if r["valueType"] == "INCIDENT" and r["intent"] == "CREATED"]
    assert len(incidents) == 1
    assert incidents[0]["value"]["errorType"] == "IO_MAPPING_ERROR"
    assert "lone surrogate" in incidents[0]["value"]["errorMessage"]
    assert incidents[0]["value"]["elementId"] == "task"
    assert_dense(engine.data_dir)


@pytest.mark.parametrize(
    ("variables", "needle"),
    [
        ('{"a":"\\ud800"}', "lone surrogate"),
        ('{"\\udc00":1}', "lone surrogate"),
        ('{"a":1e400}', "out of range"),
        ('{"a":' + "[" * 980 + "]" * 980 + "}", "nested deeper"),
        ('{"a":' + "[" * 200_000 + "]" * 200_000 + "}", "nested deeper"),
    ],
)
def test_documents_the_log_cannot_hold_are_invalid_argument_and_write_nothing(
    engine: EngineProcess, variables: str, needle: str
) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "doc.bpmn", one_task_process("doc-flow", "doc-work"))
        before = sum(len(found) for found in positions(engine.data_dir).values())
        with pytest.raises(grpc.RpcError) as failure:
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId="doc-flow", version=-1, variables=variables),
                timeout=10,
            )
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert needle in failure.value.details()
        with pytest.raises(grpc.RpcError) as failure:
            stub.CompleteJob(pb.CompleteJobRequest(jobKey=(1 << 51) + 1, variables=variables), timeout=10)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert sum(len(found) for found in positions(engine.data_dir).values()) == before
    assert_dense(engine.data_dir)


# ---------------------------------------------------------------------- damage and recovery
def write_log(data_dir: Path, batches: int = 30) -> Path:
    writer = LogWriter(data_dir, 1)
    for _ in range(batches):
        position = writer.next_position
        writer.append_batch(
            [
                json.dumps({"position": position + i, "recordType": "COMMAND", "key": -1}).encode()
                for i in range(3)
            ]
        )
    writer.close()
    return next((data_dir / "partition-1").glob("segment-*.log"))


def test_a_flipped_bit_mid_log_refuses_to_open_naming_file_and_offset(tmp_path: Path) -> None:
    segment = write_log(tmp_path)
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(LogCorruption) as failure:
        LogWriter(tmp_path, 1)
    assert str(segment) in str(failure.value)
    assert failure.value.offset <= middle
    assert segment.stat().st_size == len(data)  # nothing was cut
    with pytest.raises(LogCorruption):
        list(LogReader(tmp_path, 1).iter_records(1))


def test_a_torn_tail_is_still_cut(tmp_path: Path) -> None:
    segment = write_log(tmp_path)
    data = segment.read_bytes()
    segment.write_bytes(data + encode_entry(b'{"position": 91}', False) + b"\x00\x00\x01")
    writer = LogWriter(tmp_path, 1)
    assert writer.next_position == 91
    writer.close()
    assert segment.read_bytes() == data


def test_reader_and_recovery_notice_a_position_gap(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 1)
    writer.append_batch([json.dumps({"position": 1, "recordType": "COMMAND", "key": -1}).encode()])
    writer.append_batch([json.dumps({"position": 3, "recordType": "COMMAND", "key": -1}).encode()])
    writer.close()
    with pytest.raises(LogCorruption, match="positions must be dense"):
        LogReader(tmp_path, 1).read(1)
    partition = Partition(tmp_path, 1)
    with pytest.raises(LogCorruption):
        partition.recover()


def test_a_segment_that_ends_short_of_the_next_is_a_gap(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, 1, segment_max_bytes=150)
    for _ in range(10):
        position = writer.next_position
        writer.append_batch([json.dumps({"position": position, "recordType": "COMMAND", "key": -1}).encode()])
    writer.close()
    segments = sorted((tmp_path / "partition-1").glob("segment-*.log"))
    assert len(segments) >= 2
    first = segments[0].read_bytes()
    segments[0].write_bytes(first[: len(first) // 2])  # the older segment lost its end
    with pytest.raises(LogCorruption, match="next segment starts"):
        LogReader(tmp_path, 1).read(1)


def check_log(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "check-log", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_engine_refuses_damage_and_check_log_repairs_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    engine = EngineProcess(data_dir, partitions=1).start()
    with gateway(engine.address) as stub:
        deploy(stub, "dmg.bpmn", one_task_process("dmg", "dmg-work"))
        for n in range(40):
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(
                    bpmnProcessId="dmg", version=-1, variables=json.dumps({"n": n})
                ),
                timeout=10,
            )
    engine.kill()
    (data_dir / "partition-1" / "snapshot.json").unlink(missing_ok=True)
    segment = next((data_dir / "partition-1").glob("segment-*.log"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x10
    segment.write_bytes(bytes(data))

    restarted = EngineProcess(data_dir, partitions=1)
    with pytest.raises(RuntimeError) as failure:
        restarted.start()
    assert str(segment) in str(failure.value) and "byte offset" in str(failure.value)
    assert segment.stat().st_size == len(data)  # the engine cut nothing

    report = check_log(str(data_dir))
    assert report.returncode == 1, report.stdout + report.stderr
    assert "DAMAGE" in report.stdout and str(segment) in report.stdout
    repaired = check_log(str(data_dir), "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert list((data_dir / "partition-1").glob("damaged-*/*"))  # what was cut is kept aside
    assert check_log(str(data_dir)).returncode == 0
    again = EngineProcess(data_dir, partitions=1).start()
    again.stop()
    assert_dense(data_dir)


@pytest.mark.parametrize("content", ["", '{"partitionId": 1, "nextLoc', "{}"])
def test_an_unreadable_snapshot_falls_back_to_replay_and_names_the_file(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def first_life() -> list[int]:
        broker = await started_broker(tmp_path)
        await deploy_one_task(broker)
        keys = [await create(broker, {"n": n}) for n in range(10)]
        await broker.stop()  # writes snapshot.json
        return keys

    keys = run(first_life())
    snapshot = tmp_path / "partition-1" / "snapshot.json"
    assert snapshot.exists()
    snapshot.write_text(content)

    async def second_life() -> set[int]:
        broker = await started_broker(tmp_path)
        found = set(broker.partitions[1].state.element_instances)
        await broker.stop()
        return found

    with caplog.at_level(logging.WARNING, logger="engine.partition"):
        assert set(keys) <= run(second_life())
    assert any(str(snapshot) in message and "replaying" in message for message in caplog.messages)
