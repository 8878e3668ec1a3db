"""Jobs and incidents through the gateway: retries with backoff, JOB_NO_RETRIES and its
resolution, timeouts, update retries/timeout, throw error, and expression incidents
(IO mapping, condition, extract value, called element) resolved after fixing variables."""

from __future__ import annotations

import json
import threading
import time

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate,
    activate_one,
    complete,
    create,
    deploy,
    events,
    flow,
    gateway,
    instance_state,
    one_task_process,
    process_xml,
    service_task,
    wait_for,
)


def test_fail_with_retries_and_backoff_then_incident_and_resolution(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "retry.bpmn", one_task_process("retry-flow", "flaky"))
        instance = create(stub, "retry-flow")
        job = activate_one(stub, "flaky")
        stub.FailJob(pb.FailJobRequest(jobKey=job.key, retries=2, errorMessage="disk busy", retryBackOff=300))
        # during the backoff nothing is activatable; a parked long poll gets it when it recurs
        again = activate_one(stub, "flaky", request_timeout_ms=5000)
        assert again.key == job.key and again.retries == 2
        stub.FailJob(pb.FailJobRequest(jobKey=job.key, retries=0, errorMessage="disk dead"))
        assert activate(stub, "flaky", request_timeout_ms=200) == []

        failed = events(engine.data_dir, valueType="JOB", key=job.key, intent="FAILED")
        assert [r["value"]["retries"] for r in failed] == [2, 0]
        assert failed[0]["value"]["retryBackoff"] == 300
        assert failed[0]["value"]["recurringTime"] >= failed[0]["timestamp"] + 300
        assert (
            len(events(engine.data_dir, valueType="JOB", key=job.key, intent="RECURRED_AFTER_BACKOFF")) == 1
        )
        incident = events(engine.data_dir, valueType="INCIDENT", intent="CREATED", jobKey=job.key)[0]
        assert incident["value"]["errorType"] == "JOB_NO_RETRIES"
        assert incident["value"]["errorMessage"] == "disk dead"
        assert incident["value"]["processInstanceKey"] == instance

        # resolving while the job has no retries is rejected
        with pytest.raises(grpc.RpcError) as rejected:
            stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        assert rejected.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        with pytest.raises(grpc.RpcError) as invalid:
            stub.UpdateJobRetries(pb.UpdateJobRetriesRequest(jobKey=job.key, retries=0))
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert invalid.value.details() == (
            f"Command 'UPDATE_RETRIES' rejected with code 'INVALID_ARGUMENT': Expected to update retries for job "
            f"with key '{job.key}' with a positive amount of retries, but the amount given was '0'"
        )
        stub.UpdateJobRetries(pb.UpdateJobRetriesRequest(jobKey=job.key, retries=1))
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        retried = activate_one(stub, "flaky")
        assert retried.key == job.key and retried.retries == 1
        complete(stub, job.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )
        assert len(events(engine.data_dir, valueType="INCIDENT", key=incident["key"], intent="RESOLVED")) == 1


def test_expired_job_times_out_and_is_activatable_again(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "timeout.bpmn", one_task_process("timeout-flow", "slow"))
        create(stub, "timeout-flow")
        first = activate_one(stub, "slow", timeout_ms=200, worker="w1")
        second = activate_one(stub, "slow", timeout_ms=60_000, worker="w2", request_timeout_ms=5000)
        assert second.key == first.key and second.worker == "w2"
        timed_out = events(engine.data_dir, valueType="JOB", key=first.key, intent="TIMED_OUT")
        assert len(timed_out) == 1 and timed_out[0]["value"]["retries"] == first.retries
        # The deadline is the engine's clock when it processed the command plus the new timeout
        # (the record's own timestamp may be taken a millisecond apart, so bound it by the call).
        before_ms = int(time.time() * 1000)
        stub.UpdateJobTimeout(pb.UpdateJobTimeoutRequest(jobKey=first.key, timeout=120_000))
        after_ms = int(time.time() * 1000) + 1
        updated = events(engine.data_dir, valueType="JOB", key=first.key, intent="TIMEOUT_UPDATED")[0]
        assert before_ms + 120_000 <= updated["value"]["deadline"] <= after_ms + 120_000
        complete(stub, first.key)


def test_long_poll_is_answered_when_a_job_is_created(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "poll.bpmn", one_task_process("poll-flow", "parked"))
        received: list[pb.ActivatedJob] = []
        poller = threading.Thread(
            target=lambda: received.extend(activate(stub, "parked", 1, request_timeout_ms=8000))
        )
        poller.start()
        # give the request time to park, then create the instance that creates the job
        time.sleep(0.3)
        instance = create(stub, "poll-flow")
        poller.join(15)
        assert [job.processInstanceKey for job in received] == [instance]


def test_throw_error_without_catch_raises_unhandled_error_incident(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "uncaught.bpmn", one_task_process("uncaught-flow", "thrower"))
        instance = create(stub, "uncaught-flow")
        job = activate_one(stub, "thrower")
        stub.ThrowError(pb.ThrowErrorRequest(jobKey=job.key, errorCode="BOOM", errorMessage="it broke"))
        incident = events(
            engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance
        )[0]
        assert incident["value"]["errorType"] == "UNHANDLED_ERROR_EVENT"
        assert incident["value"]["jobKey"] == job.key
        assert "'BOOM'" in incident["value"]["errorMessage"]
        # the job is in state ERROR_THROWN: completing it is a failed precondition
        with pytest.raises(grpc.RpcError) as rejected:
            complete(stub, job.key)
        assert rejected.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "it is in state 'ERROR_THROWN'" in rejected.value.details()
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        again = activate_one(stub, "thrower")
        assert again.key == job.key
        complete(stub, job.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )


def test_error_caught_by_enclosing_subprocess_and_through_call_activity(engine: EngineProcess) -> None:
    child_body = (
        '<bpmn:startEvent id="cs"><bpmn:outgoing>c1</bpmn:outgoing></bpmn:startEvent>'
        + service_task("child-task", "child-work", "c1", "c2")
        + '<bpmn:endEvent id="ce"><bpmn:incoming>c2</bpmn:incoming></bpmn:endEvent>'
        + flow("c1", "cs", "child-task")
        + flow("c2", "child-task", "ce")
    )
    parent_body = (
        '<bpmn:startEvent id="ps"><bpmn:outgoing>p1</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:subProcess id="sub"><bpmn:incoming>p1</bpmn:incoming><bpmn:outgoing>p2</bpmn:outgoing>'
        '<bpmn:startEvent id="ss"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="error-child"/>'
        "</bpmn:extensionElements><bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing></bpmn:callActivity>"
        '<bpmn:endEvent id="se"><bpmn:incoming>s2</bpmn:incoming></bpmn:endEvent>'
        + flow("s1", "ss", "call")
        + flow("s2", "call", "se")
        + "</bpmn:subProcess>"
        '<bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:outgoing>p3</bpmn:outgoing>'
        '<bpmn:errorEventDefinition errorRef="err"/></bpmn:boundaryEvent>'
        + service_task("after-error", "after-error", "p3", "p4")
        + '<bpmn:endEvent id="pe"><bpmn:incoming>p2</bpmn:incoming></bpmn:endEvent>'
        '<bpmn:endEvent id="pe2"><bpmn:incoming>p4</bpmn:incoming></bpmn:endEvent>'
        + flow("p1", "ps", "sub")
        + flow("p2", "sub", "pe")
        + flow("p3", "caught", "after-error")
        + flow("p4", "after-error", "pe2")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "error-child.bpmn", process_xml("error-child", child_body))
        deploy(
            stub,
            "error-parent.bpmn",
            process_xml("error-parent", parent_body, '<bpmn:error id="err" errorCode="DEEP"/>'),
        )
        instance = create(stub, "error-parent")
        job = activate_one(stub, "child-work")
        stub.ThrowError(
            pb.ThrowErrorRequest(jobKey=job.key, errorCode="DEEP", variables=json.dumps({"reason": "x"}))
        )
        follow_up = activate_one(stub, "after-error")
        assert follow_up.processInstanceKey == instance
        assert json.loads(follow_up.variables)["reason"] == "x"
        # the child instance was terminated, bottom-up
        child_key = job.processInstanceKey
        assert instance_state(engine.data_dir, child_key) == "ELEMENT_TERMINATED"
        complete(stub, follow_up.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )


def test_io_mapping_incident_resolved_after_setting_variables(engine: EngineProcess) -> None:
    # A missing variable evaluates to null (reference §5.2); a failing function call does not.
    mapping = (
        '<zeebe:ioMapping><zeebe:input source="=assert(order, order != null).id" target="orderId"/>'
        "</zeebe:ioMapping>"
    )
    with gateway(engine.address) as stub:
        deploy(stub, "io.bpmn", one_task_process("io-flow", "io-work", extension=mapping))
        instance = create(stub, "io-flow", {})
        incident = wait_for(
            lambda: events(
                engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance
            ),
            what="incident",
        )[0]
        assert incident["value"]["errorType"] == "IO_MAPPING_ERROR"
        assert incident["value"]["elementId"] == "task"
        assert activate(stub, "io-work", request_timeout_ms=100) == []
        stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=instance, variables=json.dumps({"order": {"id": 7}}))
        )
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        job = activate_one(stub, "io-work")
        assert json.loads(job.variables)["orderId"] == 7
        complete(stub, job.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )


def test_condition_incident_and_default_flow(engine: EngineProcess) -> None:
    body = (
        '<bpmn:startEvent id="s"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:exclusiveGateway id="gw"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>big</bpmn:outgoing>'
        "<bpmn:outgoing>small</bpmn:outgoing></bpmn:exclusiveGateway>"
        + service_task("big-task", "big", "big", "fb")
        + service_task("small-task", "small", "small", "fs")
        + '<bpmn:endEvent id="e1"><bpmn:incoming>fb</bpmn:incoming></bpmn:endEvent>'
        '<bpmn:endEvent id="e2"><bpmn:incoming>fs</bpmn:incoming></bpmn:endEvent>'
        + flow("f0", "s", "gw")
        + flow("big", "gw", "big-task", "=amount &gt; 100")
        + flow("small", "gw", "small-task", "=amount &lt;= 100")
        + flow("fb", "big-task", "e1")
        + flow("fs", "small-task", "e2")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "gw.bpmn", process_xml("gw-flow", body))
        big = create(stub, "gw-flow", {"amount": 500})
        assert activate_one(stub, "big").processInstanceKey == big
        broken = create(stub, "gw-flow", {})
        incident = wait_for(
            lambda: events(
                engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=broken
            ),
            what="incident",
        )[0]
        assert incident["value"]["errorType"] == "CONDITION_ERROR"
        assert incident["value"]["elementId"] == "gw"
        stub.SetVariables(pb.SetVariablesRequest(elementInstanceKey=broken, variables='{"amount": 3}'))
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        assert activate_one(stub, "small").processInstanceKey == broken


def test_extract_value_and_called_element_incidents(engine: EngineProcess) -> None:
    dynamic = one_task_process("dyn-flow", "=jobKind", retries="=tries")
    call_body = (
        '<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="=target"/>'
        "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity>"
        '<bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "s", "call")
        + flow("f2", "call", "e")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "dyn.bpmn", dynamic)
        deploy(stub, "call.bpmn", process_xml("call-flow", call_body))
        instance = create(stub, "dyn-flow", {"jobKind": 42, "tries": 2})
        incident = wait_for(
            lambda: events(
                engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance
            ),
            what="incident",
        )[0]
        assert incident["value"]["errorType"] == "EXTRACT_VALUE_ERROR"
        stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=instance, variables='{"jobKind": "dyn-work"}')
        )
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        job = activate_one(stub, "dyn-work")
        assert job.retries == 2

        missing = create(stub, "call-flow", {"target": "no-such-process"})
        called = wait_for(
            lambda: events(
                engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=missing
            ),
            what="incident",
        )[0]
        assert called["value"]["errorType"] == "CALLED_ELEMENT_ERROR"
        assert "no-such-process" in called["value"]["errorMessage"]
        not_string = create(stub, "call-flow", {"target": 5})
        wrong = wait_for(
            lambda: events(
                engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=not_string
            ),
            what="incident",
        )[0]
        assert wrong["value"]["errorType"] == "CALLED_ELEMENT_ERROR"
        stub.SetVariables(
            pb.SetVariablesRequest(
                elementInstanceKey=missing,
                variables='{"target": "dyn-flow", "jobKind": "dyn-work", "tries": 1}',
            )
        )
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=called["key"]))
        child_job = activate_one(stub, "dyn-work")
        assert child_job.bpmnProcessId == "dyn-flow"
        assert (
            events(engine.data_dir, key=child_job.processInstanceKey, intent="ELEMENT_ACTIVATING")[0][
                "value"
            ]["parentProcessInstanceKey"]
            == missing
        )


def test_output_mapping_incident_is_retried_on_resolve(engine: EngineProcess) -> None:
    mapping = (
        '<zeebe:ioMapping><zeebe:output source="=assert(checked, checked != null)" target="verdict"/>'
        "</zeebe:ioMapping>"
    )
    with gateway(engine.address) as stub:
        deploy(stub, "out.bpmn", one_task_process("out-flow", "out-work", extension=mapping))
        instance = create(stub, "out-flow")
        job = activate_one(stub, "out-work")
        complete(stub, job.key, {"other": 1})
        incident = wait_for(
            lambda: events(
                engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance
            ),
            what="incident",
        )[0]
        assert incident["value"]["errorType"] == "IO_MAPPING_ERROR"
        assert instance_state(engine.data_dir, job.elementInstanceKey) == "ELEMENT_COMPLETING"
        stub.SetVariables(
            pb.SetVariablesRequest(
                elementInstanceKey=job.elementInstanceKey, variables='{"checked": "yes"}', local=True
            )
        )
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        assert instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED"
        verdict = events(engine.data_dir, valueType="VARIABLE", name="verdict", processInstanceKey=instance)
        assert [json.loads(r["value"]["value"]) for r in verdict] == ["yes"]
        assert verdict[0]["value"]["scopeKey"] == instance
