"""The embedded engine's MigrateProcessInstance (issue 19) through its gRPC gateway: Zeebe 8.5's
rules, rejection codes and texts, the records it writes (ELEMENT_MIGRATED per element instance,
JOB MIGRATED, PROCESS_INSTANCE_MIGRATION MIGRATED), jobs keeping their keys, a refused plan
writing nothing, and a migrated instance surviving kill -9. One real `python -m engine`, driven
with the gateway stubs pyzeebe ships (pyzeebe and zbctl have no migrate command)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from tests.operations.stack import linear_process
from tests.routing.harness import EngineProcess, wait_for
from tests.support import bpmn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def with_boundary(process_id: str) -> bytes:
    """start -> diagnose (error boundary 'broken' -> end-broken) -> end."""
    return bpmn.process_xml(
        process_id,
        '<bpmn:startEvent id="start"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="diagnose"/>'
        f"{bpmn.service_task('diagnose', f'{process_id}-diagnose', 'f1', 'f2')}"
        '<bpmn:sequenceFlow id="f2" sourceRef="diagnose" targetRef="end"/><bpmn:endEvent id="end"/>'
        '<bpmn:boundaryEvent id="broken" attachedToRef="diagnose"><bpmn:errorEventDefinition errorRef="err"/>'
        "</bpmn:boundaryEvent>"
        '<bpmn:sequenceFlow id="f3" sourceRef="broken" targetRef="end-broken"/><bpmn:endEvent id="end-broken"/>',
        extra='<bpmn:error id="err" errorCode="BROKEN"/>',
    )


def user_task_process(process_id: str) -> bytes:
    """start -> diagnose (a user task) -> end: the same ids, another element type."""
    return bpmn.process_xml(
        process_id,
        '<bpmn:startEvent id="start"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="diagnose"/>'
        '<bpmn:userTask id="diagnose"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="diagnose" targetRef="end"/><bpmn:endEvent id="end"/>',
    )


def calling(process_id: str, called: str) -> bytes:
    return bpmn.process_xml(
        process_id,
        '<bpmn:startEvent id="start"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>'
        '<bpmn:callActivity id="call"><bpmn:extensionElements>'
        f'<zeebe:calledElement processId="{called}"/></bpmn:extensionElements></bpmn:callActivity>'
        '<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/><bpmn:endEvent id="end"/>',
    )


class Client:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)

    def deploy(self, name: str, content: bytes) -> dict[str, int]:
        """Deploy; the definition keys by (process id, version)."""
        response = self.stub.DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]), timeout=20
        )
        return {
            f"{d.process.bpmnProcessId}:{d.process.version}": d.process.processDefinitionKey
            for d in response.deployments
        }

    def create(self, definition_key: int) -> int:
        response = self.stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(processDefinitionKey=definition_key, variables="{}"), timeout=10
        )
        return int(response.processInstanceKey)

    def activate(self, job_type: str, count: int = 1) -> list[pb.ActivatedJob]:
        jobs: list[pb.ActivatedJob] = []
        for _ in range(20):
            request = pb.ActivateJobsRequest(
                type=job_type,
                worker="t",
                timeout=60_000,
                maxJobsToActivate=count - len(jobs),
                requestTimeout=500,
            )
            for response in self.stub.ActivateJobs(request, timeout=10):
                jobs.extend(response.jobs)
            if len(jobs) >= count:
                break
        assert len(jobs) == count, f"{len(jobs)} of {count} {job_type} jobs"
        return jobs

    def complete(self, job_key: int) -> None:
        self.stub.CompleteJob(pb.CompleteJobRequest(jobKey=job_key, variables="{}"), timeout=10)

    def migrate(self, instance_key: int, target_key: int, *mapping: tuple[str, str]) -> None:
        request = pb.MigrateProcessInstanceRequest(processInstanceKey=instance_key)
        request.migrationPlan.targetProcessDefinitionKey = target_key
        for source, target in mapping:
            request.migrationPlan.mappingInstructions.add(sourceElementId=source, targetElementId=target)
        self.stub.MigrateProcessInstance(request, timeout=10)

    def refused(
        self, code: grpc.StatusCode, text: str, instance_key: int, target_key: int, *mapping: tuple[str, str]
    ) -> None:
        with pytest.raises(grpc.RpcError) as info:
            self.migrate(instance_key, target_key, *mapping)
        assert info.value.code() is code, (info.value.code(), info.value.details())
        assert f"Command 'MIGRATE' rejected with code '{_rejection(code)}': {text}" in (
            info.value.details() or ""
        )


def _rejection(code: grpc.StatusCode) -> str:
    return {
        grpc.StatusCode.NOT_FOUND: "NOT_FOUND",
        grpc.StatusCode.INVALID_ARGUMENT: "INVALID_ARGUMENT",
        grpc.StatusCode.FAILED_PRECONDITION: "INVALID_STATE",
    }[code]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = EngineProcess(Path(tmp_path_factory.mktemp("migrate-engine")) / "cluster", partitions=2).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(engine: EngineProcess) -> Iterator[Client]:
    current = Client(engine.address)
    yield current
    current.channel.close()


def of(records: list[dict[str, Any]], value_type: str, intent: str, **match: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in records
        if r["valueType"] == value_type
        and r["intent"] == intent
        and r["recordType"] == "EVENT"
        and all(r["value"].get(k) == v for k, v in match.items())
    ]


def test_migrate_moves_the_instance_and_its_job_to_version_2(engine: EngineProcess, client: Client) -> None:
    v1 = client.deploy("m.bpmn", linear_process("m", "diagnose", "repair"))["m:1"]
    v2 = client.deploy("m.bpmn", linear_process("m", "diagnose", "verify", "repair"))["m:2"]
    instance = client.create(v1)
    (job,) = client.activate("m-diagnose")
    client.migrate(instance, v2, ("diagnose", "diagnose"))
    records = engine.records()
    migrated = of(records, "PROCESS_INSTANCE", "ELEMENT_MIGRATED", processInstanceKey=instance)
    # The process first, then its task; each with the target's key, id, version.
    assert [(r["value"]["bpmnElementType"], r["value"]["elementId"]) for r in migrated] == [
        ("PROCESS", "m"),
        ("SERVICE_TASK", "diagnose"),
    ]
    assert all(r["value"]["processDefinitionKey"] == v2 and r["value"]["version"] == 2 for r in migrated)
    (job_migrated,) = of(records, "JOB", "MIGRATED")
    assert job_migrated["key"] == job.key
    assert (
        job_migrated["value"]["processDefinitionKey"] == v2
        and job_migrated["value"]["processDefinitionVersion"] == 2
    )
    (done,) = of(records, "PROCESS_INSTANCE_MIGRATION", "MIGRATED", processInstanceKey=instance)
    assert done["key"] == instance and done["value"]["targetProcessDefinitionKey"] == v2
    assert done["value"]["mappingInstructions"] == [
        {"sourceElementId": "diagnose", "targetElementId": "diagnose"}
    ]
    # The job keeps its key; the flow goes on along version 2 (verify exists only there).
    client.complete(job.key)
    (verify,) = client.activate("m-verify")
    assert verify.processDefinitionKey == v2 and verify.processDefinitionVersion == 2
    client.complete(verify.key)
    (repair,) = client.activate("m-repair")
    client.complete(repair.key)
    completed = of(engine.records(), "PROCESS_INSTANCE", "ELEMENT_COMPLETED", bpmnElementType="PROCESS")
    assert [r["value"]["version"] for r in completed if r["key"] == instance] == [2]


def test_a_token_moves_to_another_element_and_survives_kill_9(engine: EngineProcess, client: Client) -> None:
    v1 = client.deploy("k.bpmn", linear_process("k", "diagnose", "repair"))["k:1"]
    v2 = client.deploy("k.bpmn", linear_process("k", "check", "repair"))["k:2"]
    instance = client.create(v1)
    (job,) = client.activate("k-diagnose")
    client.migrate(instance, v2, ("diagnose", "check"))
    engine.kill9()
    engine.start()
    client.channel.close()
    again = Client(engine.address)
    try:
        # After replaying its log the engine knows the task as 'check' of version 2.
        again.complete(job.key)
        (repair,) = again.activate("k-repair")
        assert repair.processDefinitionKey == v2
        again.complete(repair.key)
    finally:
        again.channel.close()
    records = engine.records()
    taken = of(
        records, "PROCESS_INSTANCE", "ELEMENT_COMPLETED", processInstanceKey=instance, elementId="check"
    )
    assert len(taken) == 1 and taken[0]["value"]["version"] == 2


def test_refusals_with_zeebes_codes_and_texts_write_nothing(engine: EngineProcess, client: Client) -> None:
    v1 = client.deploy("r.bpmn", linear_process("r", "diagnose", "repair"))["r:1"]
    v2 = client.deploy("r.bpmn", linear_process("r", "diagnose", "check", "repair"))["r:2"]
    as_user_task = client.deploy("r.bpmn", user_task_process("r"))["r:3"]
    guarded = client.deploy("r.bpmn", with_boundary("r"))["r:4"]
    instance = client.create(v1)
    (held,) = client.activate("r-diagnose")
    partition = instance >> 51

    def tail(after: int) -> list[dict[str, Any]]:
        return [r for r in engine.records() if r["partitionId"] == partition and r["position"] > after]

    before = max(r["position"] for r in tail(0))
    p = f"Expected to migrate process instance '{instance}' but"
    NOT_FOUND, INVALID, STATE = (
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    missing = instance + 1000
    client.refused(
        NOT_FOUND,
        f"Expected to migrate process instance but no process instance found with key '{missing}'",
        missing,
        v2,
    )
    client.refused(
        NOT_FOUND,
        f"Expected to migrate process instance to process definition but no process definition found with key '{v2 + 999}'",
        instance,
        v2 + 999,
    )
    client.refused(
        INVALID,
        f"{p} the mapping instructions contain duplicate source element ids '[diagnose]'.",
        instance,
        v2,
        ("diagnose", "diagnose"),
        ("diagnose", "check"),
    )
    client.refused(
        INVALID,
        f"{p} mapping instructions contain a non-existing source element id 'ghost'. Elements provided in "
        "mapping instructions must exist in the source process definition.",
        instance,
        v2,
        ("ghost", "diagnose"),
    )
    client.refused(
        INVALID,
        f"{p} mapping instructions contain a non-existing target element id 'ghost'. Elements provided in "
        "mapping instructions must exist in the target process definition.",
        instance,
        v2,
        ("diagnose", "ghost"),
    )
    client.refused(
        STATE,
        f"{p} no mapping instruction defined for active element with id 'diagnose'. Elements cannot be "
        "migrated without a mapping.",
        instance,
        v2,
        ("repair", "repair"),
    )
    client.refused(
        STATE,
        f"{p} active element with id 'diagnose' and type 'SERVICE_TASK' is mapped to an element with id "
        "'diagnose' and different type 'USER_TASK'. Elements must be mapped to elements of the same type.",
        instance,
        as_user_task,
        ("diagnose", "diagnose"),
    )
    client.refused(
        STATE,
        f"{p} target element with id 'diagnose' has a boundary event. Migrating target elements with boundary "
        "events is not possible yet.",
        instance,
        guarded,
        ("diagnose", "diagnose"),
    )

    # Refusals change nothing: on the instance's partition only the commands and their rejections
    # (read once all eight reached the log file: a rejection is not awaited to disk).
    def all_rejected() -> list[dict[str, Any]] | None:
        found = tail(before)
        return found if sum(r["recordType"] == "COMMAND_REJECTION" for r in found) >= 8 else None

    records = wait_for(
        all_rejected,
        10,
        what="eight rejections in the log",
    )
    assert not [r for r in records if r["recordType"] == "EVENT"]
    assert {r["intent"] for r in records if r["recordType"] == "COMMAND_REJECTION"} == {"MIGRATE"}
    # Still on version 1: the job completes and the flow ends there.
    client.complete(held.key)
    (repair,) = client.activate("r-repair")
    assert repair.processDefinitionKey == v1


def test_child_instances_incidents_and_unsupported_elements_are_refused(
    engine: EngineProcess, client: Client
) -> None:
    leaf_1 = client.deploy("leaf.bpmn", linear_process("leaf", "wait"))["leaf:1"]
    leaf_2 = client.deploy("leaf.bpmn", linear_process("leaf", "wait", "more"))["leaf:2"]
    root_1 = client.deploy("root.bpmn", calling("root", "leaf"))["root:1"]
    root_2 = client.deploy(
        "root.bpmn",
        calling("root", "leaf").replace(
            b'<bpmn:callActivity id="call">', b'<bpmn:callActivity id="call" name="v2">'
        ),
    )["root:2"]
    assert leaf_1 and root_1
    root = client.create(root_1)
    (job,) = client.activate("leaf-wait")
    child = job.processInstanceKey
    with pytest.raises(grpc.RpcError) as info:
        client.migrate(child, leaf_2, ("wait", "wait"))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert (
        f"Expected to migrate process instance '{child}' but process instance is a child process instance. "
        "Child process instances cannot be migrated." in (info.value.details() or "")
    )
    with pytest.raises(grpc.RpcError) as info:
        client.migrate(root, root_2, ("call", "call"))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert (
        f"Expected to migrate process instance '{root}' but active element with id 'call' has an unsupported "
        "type. The migration of a CALL_ACTIVITY is not supported." in (info.value.details() or "")
    )
    # An incident on the active element.
    v1 = client.deploy("i.bpmn", linear_process("i", "diagnose"))["i:1"]
    v2 = client.deploy("i.bpmn", linear_process("i", "diagnose", "more"))["i:2"]
    instance = client.create(v1)
    (failing,) = client.activate("i-diagnose")
    client.stub.FailJob(pb.FailJobRequest(jobKey=failing.key, retries=0, errorMessage="boom"), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        client.migrate(instance, v2, ("diagnose", "diagnose"))
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert (
        f"Expected to migrate process instance '{instance}' but active element with id 'diagnose' has an incident. "
        "Elements cannot be migrated with an incident yet. Please retry migration after resolving the incident."
        in (info.value.details() or "")
    )
