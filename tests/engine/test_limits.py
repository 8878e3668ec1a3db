"""Issue 8, limits: long rejection reasons keep their status, job batches respect the client's
4 MiB receive limit (a job too large for any client becomes an incident instead of starving the
others), and one request is capped at 4 MiB (real `python -m engine` over gRPC)."""

from __future__ import annotations

import json

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb

from engine.gateway import short_status_message
from engine.values import MAX_MESSAGE_BYTES
from tests.engine.conftest import EngineProcess
from tests.engine.helpers import activate, create, deploy, events, gateway, one_task_process, process_xml


def test_a_deployment_with_hundreds_of_problems_is_invalid_argument_with_a_short_reason(
    engine: EngineProcess,
) -> None:
    tasks = "".join(f'<bpmn:serviceTask id="t{n}"/>' for n in range(200))  # no task definition
    resource = process_xml("many-problems", '<bpmn:startEvent id="s"/>' + tasks)
    with gateway(engine.address) as stub, pytest.raises(grpc.RpcError) as failure:
        deploy(stub, "many.bpmn", resource)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = failure.value.details()
    assert "Element: t0" in details and "Element: t19" in details
    assert "Element: t20" not in details
    assert "and 180 more problems" in details
    assert len(details) < 4_000


def test_status_messages_are_cut_by_their_encoded_size() -> None:
    assert short_status_message("fine") == "fine"
    cut = short_status_message("é" * 10_000)
    assert cut.endswith("more characters)")
    assert len(cut.encode()) < 4_000  # each é is 6 bytes percent-encoded: about 660 survive


def big_variable(megabytes: float) -> str:
    return "x" * int(megabytes * 1024 * 1024)


def test_job_batches_are_split_under_the_clients_receive_limit(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:  # grpc's default receive limit: 4 MiB, like pyzeebe
        deploy(stub, "big-jobs.bpmn", one_task_process("big-jobs", "big-jobs-work"))
        # four, so that each of the two partitions holds two (6 MB in one message before the fix)
        keys = {create(stub, "big-jobs", {"blob": big_variable(3)}) for _ in range(4)}
        keys |= {create(stub, "big-jobs", {"n": n}) for n in range(3)}
        jobs = activate(stub, "big-jobs-work", max_jobs=10, request_timeout_ms=2000)
        assert {job.processInstanceKey for job in jobs} == keys
        for job in jobs:
            stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key, variables="{}"), timeout=10)


def test_a_job_no_client_can_receive_becomes_an_incident_and_the_others_still_flow(
    engine: EngineProcess,
) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "huge-job.bpmn", one_task_process("huge-job", "huge-job-work"))
        huge = create(stub, "huge-job", {"a": big_variable(2.5)})
        stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=huge, variables=json.dumps({"b": big_variable(2.5)})),
            timeout=10,
        )
        small = {create(stub, "huge-job", {"n": n}) for n in range(3)}
        delivered = set()
        for _ in range(3):  # bounded: the small jobs arrive in the first poll, the huge one never
            delivered |= {
                job.processInstanceKey for job in activate(stub, "huge-job-work", request_timeout_ms=300)
            }
        assert delivered == small
    incidents = events(engine.data_dir, valueType="INCIDENT", processInstanceKey=huge)
    assert [i["value"]["errorType"] for i in incidents] == ["MESSAGE_SIZE_EXCEEDED"]
    assert incidents[0]["value"]["jobKey"] > 0


def test_a_request_over_the_documented_cap_is_refused(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "cap.bpmn", one_task_process("cap", "cap-work"))
        with pytest.raises(grpc.RpcError) as failure:
            create(stub, "cap", {"blob": "x" * (MAX_MESSAGE_BYTES + 1)})
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
