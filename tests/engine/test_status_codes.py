"""Issue 8, status codes: hostile but well-formed requests get a clear status, not UNKNOWN or an
instance that can never complete (real `python -m engine` over gRPC)."""

from __future__ import annotations

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import activate, all_records, create, deploy, events, gateway, one_task_process

INT64_MAX = 2**63 - 1


def test_start_instruction_naming_the_process_itself_is_invalid_argument(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "self-start.bpmn", one_task_process("self-start", "self-start-work"))
        before = len(all_records(engine.data_dir))
        with pytest.raises(grpc.RpcError) as failure:
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(
                    bpmnProcessId="self-start",
                    version=-1,
                    startInstructions=[pb.ProcessInstanceCreationStartInstruction(elementId="self-start")],
                ),
                timeout=10,
            )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unsupported element type 'PROCESS'" in failure.value.details()
    created = [
        r
        for r in all_records(engine.data_dir)[before:]
        if r["valueType"] == "PROCESS_INSTANCE_CREATION" and r["recordType"] == "EVENT"
    ]
    assert created == []


def test_activate_jobs_with_the_largest_timeout_is_clamped_not_unknown(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "forever.bpmn", one_task_process("forever", "forever-work"))
        key = create(stub, "forever")
        jobs = activate(stub, "forever-work", timeout_ms=INT64_MAX)
        assert [job.processInstanceKey for job in jobs] == [key]
        assert jobs[0].deadline == INT64_MAX
        stub.UpdateJobTimeout(pb.UpdateJobTimeoutRequest(jobKey=jobs[0].key, timeout=INT64_MAX), timeout=10)
        stub.CompleteJob(pb.CompleteJobRequest(jobKey=jobs[0].key, variables="{}"), timeout=10)


def test_retries_that_do_not_fit_the_wire_become_an_incident(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(
            stub,
            "huge-retries.bpmn",
            one_task_process("huge-retries", "huge-retries-work", retries="=2 ** 40"),
        )
        key = create(stub, "huge-retries")
        assert activate(stub, "huge-retries-work", request_timeout_ms=300) == []
    incidents = events(engine.data_dir, valueType="INCIDENT", processInstanceKey=key)
    assert [i["value"]["errorType"] for i in incidents] == ["EXTRACT_VALUE_ERROR"]
    assert "32 bits" in incidents[0]["value"]["errorMessage"]
