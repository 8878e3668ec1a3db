"""Gateway behaviour through pyzeebe and raw gRPC: deployment versions and duplicates, key
layout, round-robin partitions, topology and health, bad input with Zeebe's codes and texts."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pyzeebe import ZeebeClient
from pyzeebe.errors import ProcessDefinitionNotFoundError
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate,
    activate_one,
    complete,
    create,
    deploy,
    events,
    gateway,
    one_task_process,
)

PARTITION_1_FIRST_KEY = 2251799813685249


def rpc_error(call: object, *args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(*args)  # type: ignore[operator]
    return error.value


def test_deploy_versions_duplicates_and_partitioned_keys(fresh_engine: EngineProcess) -> None:
    with gateway(fresh_engine.address) as stub:
        first = deploy(stub, "v.bpmn", one_task_process("versioned", "v-work"))
        process = first.deployments[0].process
        assert process.processDefinitionKey == PARTITION_1_FIRST_KEY and process.version == 1
        assert first.key >> 51 == 1
        duplicate = deploy(stub, "v.bpmn", one_task_process("versioned", "v-work"))
        assert duplicate.deployments[0].process.processDefinitionKey == process.processDefinitionKey
        assert duplicate.deployments[0].process.version == 1
        dup_record = events(fresh_engine.data_dir, valueType="DEPLOYMENT", key=duplicate.key, partitionId=1)[
            0
        ]
        assert dup_record["value"]["processesMetadata"][0]["duplicate"] is True
        changed = deploy(stub, "v.bpmn", one_task_process("versioned", "v-work-2"))
        assert changed.deployments[0].process.version == 2
        # the deployment is on every partition, with partition-1 keys
        for partition_id in (1, 2):
            created = events(fresh_engine.data_dir, valueType="PROCESS", partitionId=partition_id)
            assert [r["value"]["version"] for r in created] == [1, 2]
        # instances are created round-robin; keys encode their partition
        keys = [create(stub, "versioned") for _ in range(4)]
        assert sorted(key >> 51 for key in keys) == [1, 1, 2, 2]
        jobs = [activate_one(stub, "v-work-2") for _ in range(4)]
        assert {job.processDefinitionKey for job in jobs} == {
            changed.deployments[0].process.processDefinitionKey
        }
        for job in jobs:
            assert job.key >> 51 == job.processInstanceKey >> 51
            complete(stub, job.key)
        # first key on partition 2 is (2 << 51) + 1 (reference §2.1)
        partition_2_keys = sorted(
            r["key"] for r in events(fresh_engine.data_dir, partitionId=2) if r["key"] >> 51 == 2
        )
        assert partition_2_keys[0] == 4503599627370497


def test_topology_health_and_pyzeebe_client(engine: EngineProcess) -> None:
    async def scenario() -> None:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = ZeebeClient(channel)
            topology = await client.topology()
            assert topology.cluster_size == 1 and topology.partitions_count == 2
            assert [p.partition_id for p in topology.brokers[0].partitions] == [1, 2]
            with pytest.raises(ProcessDefinitionNotFoundError):
                await client.run_process("does-not-exist")
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(service="gateway_protocol.Gateway"))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING

    asyncio.run(scenario())


def test_bad_input_gets_zeebe_codes_and_messages(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "bad.bpmn", one_task_process("bad-input", "bad-work"))

        def deploy_raw(name: str, content: bytes) -> None:
            stub.DeployResource(pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]))

        malformed = rpc_error(deploy_raw, "broken.bpmn", b"<bpmn:definitions")
        assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert malformed.details().startswith(
            "Command 'CREATE' rejected with code 'INVALID_ARGUMENT': Expected to deploy new resources, but "
            "encountered the following errors:\n'broken.bpmn': "
        )
        doctype = rpc_error(
            deploy_raw, "doctype.bpmn", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><definitions/>'
        )
        assert doctype.code() == grpc.StatusCode.INVALID_ARGUMENT and "'doctype.bpmn'" in doctype.details()
        unsupported = one_task_process("unsupported", "x").replace(
            b'<bpmn:endEvent id="end">',
            b'<bpmn:intermediateCatchEvent id="wait"><bpmn:signalEventDefinition signalRef="sig"/>'
            b"</bpmn:intermediateCatchEvent>"
            b'<bpmn:endEvent id="end">',
        )
        rejected = rpc_error(deploy_raw, "unsupported.bpmn", unsupported)
        assert rejected.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'unsupported.bpmn'" in rejected.details() and "- Element: wait" in rejected.details()
        empty = rpc_error(stub.DeployResource, pb.DeployResourceRequest())
        assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT

        for variables in ("[1, 2]", "42", "{not json", '{"x": NaN}'):
            error = rpc_error(
                stub.CreateProcessInstance,
                pb.CreateProcessInstanceRequest(bpmnProcessId="bad-input", version=-1, variables=variables),
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, variables

        missing = rpc_error(
            stub.CreateProcessInstance, pb.CreateProcessInstanceRequest(bpmnProcessId="nope", version=-1)
        )
        assert missing.code() == grpc.StatusCode.NOT_FOUND
        assert missing.details() == (
            "Command 'CREATE' rejected with code 'NOT_FOUND': Expected to find process definition with process ID "
            "'nope', but none found"
        )
        versioned = rpc_error(
            stub.CreateProcessInstance, pb.CreateProcessInstanceRequest(bpmnProcessId="bad-input", version=9)
        )
        assert "with process ID 'bad-input' and version '9', but none found" in versioned.details()

        unknown_job = 2251799813999999
        for call, request, text in [
            (
                stub.CompleteJob,
                pb.CompleteJobRequest(jobKey=unknown_job),
                "Expected to complete job with key '{k}', but no such job was found",
            ),
            (
                stub.FailJob,
                pb.FailJobRequest(jobKey=unknown_job, retries=1),
                "Expected to fail job with key '{k}', but no such job was found",
            ),
            (
                stub.ThrowError,
                pb.ThrowErrorRequest(jobKey=unknown_job, errorCode="x"),
                "Expected to throw an error for job with key '{k}', but no such job was found",
            ),
            (
                stub.ResolveIncident,
                pb.ResolveIncidentRequest(incidentKey=unknown_job),
                "Expected to resolve incident with key '{k}', but no such incident was found",
            ),
            (
                stub.SetVariables,
                pb.SetVariablesRequest(elementInstanceKey=unknown_job, variables="{}"),
                "Expected to update variables for element with key '{k}', but no such element was found",
            ),
            (
                stub.CancelProcessInstance,
                pb.CancelProcessInstanceRequest(processInstanceKey=unknown_job),
                "Expected to cancel a process instance with key '{k}', but no such process was found",
            ),
        ]:
            error = rpc_error(call, request)
            assert error.code() == grpc.StatusCode.NOT_FOUND, text
            assert error.details().endswith(text.format(k=unknown_job)), error.details()
            assert error.details().startswith("Command '")

        instance = create(stub, "bad-input")
        job = activate_one(stub, "bad-work")
        not_object = rpc_error(stub.CompleteJob, pb.CompleteJobRequest(jobKey=job.key, variables="[1]"))
        assert not_object.code() == grpc.StatusCode.INVALID_ARGUMENT
        set_not_object = rpc_error(
            stub.SetVariables, pb.SetVariablesRequest(elementInstanceKey=instance, variables='"x"')
        )
        assert set_not_object.code() == grpc.StatusCode.INVALID_ARGUMENT
        complete(stub, job.key, {"ok": 1})
        twice = rpc_error(stub.CompleteJob, pb.CompleteJobRequest(jobKey=job.key))
        assert twice.code() == grpc.StatusCode.NOT_FOUND
        assert twice.details() == (
            f"Command 'COMPLETE' rejected with code 'NOT_FOUND': Expected to complete job with key '{job.key}', "
            f"but no such job was found"
        )

        for tenant in ("", "<default>"):
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId="bad-input", version=-1, tenantId=tenant)
            )
        tenant_error = rpc_error(
            stub.CreateProcessInstance,
            pb.CreateProcessInstanceRequest(bpmnProcessId="bad-input", version=-1, tenantId="acme"),
        )
        assert tenant_error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "multi-tenancy is disabled" in tenant_error.details()
        activation_tenant = rpc_error(
            lambda: list(
                stub.ActivateJobs(
                    pb.ActivateJobsRequest(
                        type="bad-work", worker="w", timeout=1000, maxJobsToActivate=1, tenantIds=["acme"]
                    )
                )
            )
        )
        assert activation_tenant.code() == grpc.StatusCode.INVALID_ARGUMENT
        for request in (
            pb.ActivateJobsRequest(type="", worker="w", timeout=1000, maxJobsToActivate=1),
            pb.ActivateJobsRequest(type="t", worker="w", timeout=0, maxJobsToActivate=1),
            pb.ActivateJobsRequest(type="t", worker="w", timeout=1000, maxJobsToActivate=0),
        ):
            assert (
                rpc_error(lambda r=request: list(stub.ActivateJobs(r))).code()
                == grpc.StatusCode.INVALID_ARGUMENT
            )


def test_unsupported_rpcs_answer_unimplemented(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        for call, request in [
            (stub.DeleteResource, pb.DeleteResourceRequest(resourceKey=1)),
        ]:
            error = rpc_error(call, request)
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "not supported" in error.details()


def test_set_variables_local_and_propagating(engine: EngineProcess) -> None:
    mapping = '<zeebe:ioMapping><zeebe:input source="=1" target="local"/></zeebe:ioMapping>'
    with gateway(engine.address) as stub:
        deploy(stub, "vars.bpmn", one_task_process("vars-flow", "vars-work", extension=mapping))
        instance = create(stub, "vars-flow", {"root": 0})
        job = activate_one(stub, "vars-work")
        task = job.elementInstanceKey
        response = stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=task, variables='{"local": 5, "root": 7, "fresh": 1}')
        )
        stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=task, variables='{"onlyHere": true}', local=True)
        )
        document = events(engine.data_dir, valueType="VARIABLE_DOCUMENT", key=response.key)[0]
        assert document["value"]["updateSemantics"] == "PROPAGATE" and document["value"]["scopeKey"] == task
        scopes = {
            r["value"]["name"]: r["value"]["scopeKey"]
            for r in events(engine.data_dir, valueType="VARIABLE", processInstanceKey=instance)
        }
        assert scopes == {"root": instance, "local": task, "fresh": instance, "onlyHere": task}
        complete(stub, job.key)
        final = {
            r["value"]["name"]: json.loads(r["value"]["value"])
            for r in events(
                engine.data_dir, valueType="VARIABLE", processInstanceKey=instance, scopeKey=instance
            )
        }
        assert final == {"root": 7, "fresh": 1}


def test_stream_activated_jobs_pushes_new_jobs(engine: EngineProcess) -> None:
    async def scenario() -> list[pb.ActivatedJob]:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            stub = pb_grpc.GatewayStub(channel)
            await stub.DeployResource(
                pb.DeployResourceRequest(
                    resources=[
                        pb.Resource(name="s.bpmn", content=one_task_process("stream-flow", "streamed"))
                    ]
                )
            )
            stream = stub.StreamActivatedJobs(
                pb.StreamActivatedJobsRequest(type="streamed", worker="streamer", timeout=30_000)
            )
            received: list[pb.ActivatedJob] = []

            async def consume() -> None:
                async for job in stream:
                    received.append(job)
                    await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key))
                    if len(received) == 3:
                        return

            consumer = asyncio.create_task(consume())
            await asyncio.sleep(0.2)
            for _ in range(3):
                await stub.CreateProcessInstance(
                    pb.CreateProcessInstanceRequest(bpmnProcessId="stream-flow", version=-1)
                )
            await asyncio.wait_for(consumer, 10)
            stream.cancel()
            return received

    jobs = asyncio.run(scenario())
    assert [job.worker for job in jobs] == ["streamer"] * 3
    assert len({job.key for job in jobs}) == 3


def test_deprecated_deploy_process(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        response = stub.DeployProcess(
            pb.DeployProcessRequest(
                processes=[
                    pb.ProcessRequestObject(name="old.bpmn", definition=one_task_process("old-api", "old"))
                ]
            )
        )
        assert response.processes[0].bpmnProcessId == "old-api" and response.processes[0].version == 1


def test_log_is_readable_by_another_reader_while_the_engine_writes(engine: EngineProcess) -> None:
    """The importer's view: tail the log from another reader during load; positions are
    consecutive and every record has the §3.3 envelope."""
    from engine.log import LogReader

    with gateway(engine.address) as stub:
        deploy(stub, "tail.bpmn", one_task_process("tail-flow", "tail-work"))
        readers = {pid: LogReader(engine.data_dir, pid) for pid in (1, 2)}
        next_position = {pid: 1 for pid in readers}
        for round_number in range(20):
            create(stub, "tail-flow", {"round": round_number})
            for pid, reader in readers.items():
                for record in reader.read(next_position[pid], max_records=100_000):
                    assert record["position"] == next_position[pid]
                    assert (
                        record["partitionId"] == pid
                        and "value" in record
                        and record["brokerVersion"] == "8.5.0"
                    )
                    next_position[pid] += 1
        for job in activate(stub, "tail-work", max_jobs=50, request_timeout_ms=1000):
            complete(stub, job.key)
    assert all(position > 20 for position in next_position.values())
