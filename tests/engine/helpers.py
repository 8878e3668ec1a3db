"""Test helpers: a synchronous gateway stub, a pyzeebe client call, job activation, BPMN builders,
files to deploy and log queries."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from pyzeebe import ZeebeClient
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from engine.log import LogReader, partition_ids
from engine.partition import Partition
from engine.processing.command import Command
from engine.processing.processors.creation import CreateInstance
from tests.support import bpmn, waiting

# The BPMN builder is tests.support's; these keep the positional `extension, retries` the engine
# tests pass.
process_xml = bpmn.process_xml
flow = bpmn.flow


def service_task(
    task_id: str, job_type: str, incoming: str, outgoing: str, extension: str = "", retries: str = "3"
) -> str:
    return bpmn.service_task(task_id, job_type, incoming, outgoing, extension=extension, retries=retries)


def one_task_process(process_id: str, job_type: str, extension: str = "", retries: str = "3") -> bytes:
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + service_task("task", job_type, "f1", "f2", extension, retries)
        + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "task")
        + flow("f2", "task", "end")
    )
    return process_xml(process_id, body)


@contextmanager
def gateway(address: str) -> Iterator[pb_grpc.GatewayStub]:
    with grpc.insecure_channel(address) as channel:
        yield pb_grpc.GatewayStub(channel)


def pyzeebe_call(address: str, call: Any) -> Any:
    """Run `await call(client)` with a pyzeebe ZeebeClient on its own channel; returns its result."""

    async def scenario() -> Any:
        async with grpc.aio.insecure_channel(address) as channel:
            return await call(ZeebeClient(channel))

    return asyncio.run(scenario())


def write_file(tmp_path: Path, name: str, content: bytes) -> Path:
    """A resource on disk, for the clients that deploy files (zbctl, pyzeebe's deploy_resource)."""
    path = tmp_path / name
    path.write_bytes(content)
    return path


def deploy(stub: pb_grpc.GatewayStub, name: str, content: bytes) -> pb.DeployResourceResponse:
    return stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]), timeout=20
    )


def create(stub: pb_grpc.GatewayStub, process_id: str, variables: dict[str, Any] | None = None) -> int:
    response = stub.CreateProcessInstance(
        pb.CreateProcessInstanceRequest(
            bpmnProcessId=process_id, version=-1, variables=json.dumps(variables or {})
        ),
        timeout=10,
    )
    return int(response.processInstanceKey)


def activate(
    stub: pb_grpc.GatewayStub,
    job_type: str,
    max_jobs: int = 10,
    request_timeout_ms: int = 5000,
    timeout_ms: int = 60_000,
    worker: str = "test-worker",
    fetch: list[str] | None = None,
) -> list[pb.ActivatedJob]:
    jobs: list[pb.ActivatedJob] = []
    request = pb.ActivateJobsRequest(
        type=job_type,
        worker=worker,
        timeout=timeout_ms,
        maxJobsToActivate=max_jobs,
        requestTimeout=request_timeout_ms,
        fetchVariable=fetch or [],
    )
    for response in stub.ActivateJobs(request, timeout=request_timeout_ms / 1000 + 10):
        jobs.extend(response.jobs)
    return jobs


def activate_one(stub: pb_grpc.GatewayStub, job_type: str, **kwargs: Any) -> pb.ActivatedJob:
    jobs = activate(stub, job_type, max_jobs=1, **kwargs)
    assert len(jobs) == 1, f"expected one job of type {job_type!r}, got {len(jobs)}"
    return jobs[0]


def complete(stub: pb_grpc.GatewayStub, job_key: int, variables: dict[str, Any] | None = None) -> None:
    stub.CompleteJob(pb.CompleteJobRequest(jobKey=job_key, variables=json.dumps(variables or {})), timeout=10)


def all_records(data_dir: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for partition_id in partition_ids(data_dir):
        found.extend(LogReader(data_dir, partition_id).read(1, 10_000_000))
    return found


def events(data_dir: Path, **match: Any) -> list[dict[str, Any]]:
    """EVENT records whose top-level or value fields equal every `match` item."""
    result = []
    for record in all_records(data_dir):
        if record["recordType"] != "EVENT":
            continue
        if all(record.get(name, record["value"].get(name)) == wanted for name, wanted in match.items()):
            result.append(record)
    return result


def intents(data_dir: Path, value_type: str, **match: Any) -> list[str]:
    """Intents of the EVENT records of `value_type` that match, in log order."""
    return [r["intent"] for r in events(data_dir, valueType=value_type, **match)]


def pi_intents(data_dir: Path, instance: int, element_id: str) -> list[str]:
    """The lifecycle of an element in a process instance: its PROCESS_INSTANCE intents, in order."""
    return [
        r["intent"]
        for r in events(
            data_dir, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId=element_id
        )
    ]


def variables_of(data_dir: Path, instance: int) -> dict[str, Any]:
    """Every variable of a process instance (any scope) at its last written value."""
    return {
        r["value"]["name"]: json.loads(r["value"]["value"])
        for r in events(data_dir, valueType="VARIABLE", processInstanceKey=instance)
    }


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """tests.support's wait_for, except that a predicate that raises fails the wait at once (as these
    tests always had it: a broken probe is a failure, not "not yet")."""
    return waiting.wait_for(predicate, timeout, what=what, stop_on=(Exception,))


def instance_state(data_dir: Path, key: int) -> str | None:
    """Last lifecycle intent of an element instance (e.g. ELEMENT_COMPLETED)."""
    state = None
    for record in all_records(data_dir):
        if (
            record["recordType"] == "EVENT"
            and record["valueType"] == "PROCESS_INSTANCE"
            and record["key"] == key
        ):
            state = record["intent"]
    return state


def element_instances(data_dir: Path, process_instance_key: int, element_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in events(
            data_dir,
            valueType="PROCESS_INSTANCE",
            processInstanceKey=process_instance_key,
            elementId=element_id,
        )
        if r["intent"] == "ELEMENT_ACTIVATING"
    ]


async def create_instances_paced(
    stub: Any, process_id: str, count: int, max_seconds: float, seed: int = 7
) -> set[int]:
    """Create up to `count` instances of `process_id` a few ms apart (seeded), for at most
    `max_seconds`; returns their keys. Used by the race tests, whose racing clients run meanwhile."""
    rng = random.Random(seed)
    created: set[int] = set()
    started = time.monotonic()
    for _ in range(count):
        if time.monotonic() - started > max_seconds:
            break
        response = await stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId=process_id, version=-1, variables="{}"), timeout=10
        )
        created.add(response.processInstanceKey)
        await asyncio.sleep(rng.uniform(0.0, 0.01))
    return created


async def create_on(partition: Partition, process_id: str) -> int:
    """A process instance on that very partition of an in-process Broker (its round robin would
    choose), durable when this returns."""
    created = partition.execute(
        Command(
            "PROCESS_INSTANCE_CREATION",
            "CREATE",
            {"bpmnProcessId": process_id},
            request=CreateInstance(process_id),
        )
    )
    await partition.durable()
    return int(created.process_instance_key)


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll `predicate` (bounded in time and turns) while the event loop goes on: an in-process
    Broker's loops run meanwhile, which tests.support's wait_for, blocking the loop, would stop."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        if predicate():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
