"""BPMN semantics through the gateway: embedded sub-process scopes and mappings, terminate end
events, exclusive gateway order, call activity variable options, modification into a
sub-process that is not active, start instructions, CreateProcessInstanceWithResult."""

from __future__ import annotations

import json

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
    process_xml,
    service_task,
    wait_for,
)
from tests.support.bpmn import START, TERMINATE, end_event


def io(inputs: list[tuple[str, str]] = (), outputs: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    body = "".join(f'<zeebe:input source="{s}" target="{t}"/>' for s, t in inputs)
    body += "".join(f'<zeebe:output source="{s}" target="{t}"/>' for s, t in outputs)
    return f"<zeebe:ioMapping>{body}</zeebe:ioMapping>"


def values(job: pb.ActivatedJob) -> dict:
    return json.loads(job.variables)


def test_subprocess_scope_mappings_and_dropped_locals(engine: EngineProcess) -> None:
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:extensionElements>'
        + io([("=order.id", "orderId")], [("=result", "subResult")])
        + "</bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>"
        '<bpmn:startEvent id="sub-start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>'
        + service_task("inner", "sem-inner", "s1", "s2")
        + end_event("sub-end", "s2")
        + flow("s1", "sub-start", "inner")
        + flow("s2", "inner", "sub-end")
        + "</bpmn:subProcess>"
    )
    body = START + sub + service_task("after", "sem-after", "f1", "f2") + end_event("end", "f2")
    body += flow("f0", "start", "sub") + flow("f1", "sub", "after") + flow("f2", "after", "end")
    with gateway(engine.address) as stub:
        deploy(stub, "sub.bpmn", process_xml("sem-sub", body))
        instance = create(stub, "sem-sub", {"order": {"id": 17}})
        inner = activate_one(stub, "sem-inner")
        assert values(inner) == {"order": {"id": 17}, "orderId": 17}
        complete(stub, inner.key, {"result": "R", "tmp": 1})
        after = activate_one(stub, "sem-after")
        # the sub-process local orderId is gone; job variables propagated to the root
        assert values(after) == {"order": {"id": 17}, "result": "R", "tmp": 1, "subResult": "R"}
        complete(stub, after.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )
        sub_local = events(engine.data_dir, valueType="VARIABLE", name="orderId", processInstanceKey=instance)
        sub_key = events(
            engine.data_dir, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="sub"
        )[0]["key"]
        assert [r["value"]["scopeKey"] for r in sub_local] == [sub_key]


def test_terminate_end_event_ends_parallel_branches(engine: EngineProcess) -> None:
    body = (
        START
        + '<bpmn:parallelGateway id="fork"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>a</bpmn:outgoing>'
        "<bpmn:outgoing>b</bpmn:outgoing></bpmn:parallelGateway>"
        + service_task("task-a", "sem-term-a", "a", "a2")
        + service_task("task-b", "sem-term-b", "b", "b2")
        + end_event("kill", "a2", TERMINATE)
        + end_event("normal", "b2")
        + flow("f0", "start", "fork")
        + flow("a", "fork", "task-a")
        + flow("b", "fork", "task-b")
        + flow("a2", "task-a", "kill")
        + flow("b2", "task-b", "normal")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "term.bpmn", process_xml("sem-term", body))
        instance = create(stub, "sem-term")
        job_b = activate_one(stub, "sem-term-b")
        job_a = activate_one(stub, "sem-term-a")
        complete(stub, job_a.key)
        assert instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED"
        assert instance_state(engine.data_dir, job_b.elementInstanceKey) == "ELEMENT_TERMINATED"
        assert events(engine.data_dir, valueType="JOB", key=job_b.key, intent="CANCELED")


def test_exclusive_gateway_takes_first_true_condition_in_xml_order(engine: EngineProcess) -> None:
    body = (
        START + '<bpmn:exclusiveGateway id="gw" default="dflt"><bpmn:incoming>f0</bpmn:incoming>'
        "<bpmn:outgoing>first</bpmn:outgoing><bpmn:outgoing>second</bpmn:outgoing><bpmn:outgoing>dflt</bpmn:outgoing>"
        "</bpmn:exclusiveGateway>"
        + service_task("t1", "sem-first", "first", "e1")
        + service_task("t2", "sem-second", "second", "e2")
        + service_task("t3", "sem-default", "dflt", "e3")
        + end_event("end1", "e1")
        + end_event("end2", "e2")
        + end_event("end3", "e3")
        + flow("f0", "start", "gw")
        + flow("first", "gw", "t1", "=x &gt; 1")
        + flow("second", "gw", "t2", "=x &gt; 0")
        + flow("dflt", "gw", "t3")
        + flow("e1", "t1", "end1")
        + flow("e2", "t2", "end2")
        + flow("e3", "t3", "end3")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "xor.bpmn", process_xml("sem-xor", body))
        both = create(stub, "sem-xor", {"x": 5})
        only_second = create(stub, "sem-xor", {"x": 1})
        neither = create(stub, "sem-xor", {"x": -1})
        assert [j.processInstanceKey for j in activate(stub, "sem-first", request_timeout_ms=2000)] == [both]
        assert [j.processInstanceKey for j in activate(stub, "sem-second", request_timeout_ms=2000)] == [
            only_second
        ]
        assert [j.processInstanceKey for j in activate(stub, "sem-default", request_timeout_ms=2000)] == [
            neither
        ]


def test_call_activity_variable_options_and_nested_output_target(engine: EngineProcess) -> None:
    child = (
        START
        + service_task("child-task", "sem-child", "f0", "f1")
        + end_event("end", "f1")
        + flow("f0", "start", "child-task")
        + flow("f1", "child-task", "end")
    )
    parent = (
        START + '<bpmn:callActivity id="call"><bpmn:extensionElements>'
        '<zeebe:calledElement processId="=childId" propagateAllParentVariables="false" propagateAllChildVariables="false"/>'
        + io([("=serverSn", "sn")], [("=verdict", "report.verdict")])
        + "</bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing></bpmn:callActivity>"
        + end_event("end", "f1")
        + flow("f0", "start", "call")
        + flow("f1", "call", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "child.bpmn", process_xml("sem-child-process", child))
        deploy(stub, "parent.bpmn", process_xml("sem-parent", parent))
        instance = create(
            stub,
            "sem-parent",
            {"childId": "sem-child-process", "serverSn": "SN-5", "secret": "x", "report": {"id": 1}},
        )
        job = activate_one(stub, "sem-child")
        # only the input mapping reaches the child (propagateAllParentVariables=false)
        assert values(job) == {"sn": "SN-5"}
        complete(stub, job.key, {"verdict": "bad", "noise": 1})
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )
        root_vars = {
            r["value"]["name"]: json.loads(r["value"]["value"])
            for r in events(
                engine.data_dir, valueType="VARIABLE", processInstanceKey=instance, scopeKey=instance
            )
        }
        assert root_vars["report"] == {"id": 1, "verdict": "bad"}  # nested target merged into the object
        assert "noise" not in root_vars and "sn" not in root_vars


def test_create_with_result_and_start_instructions(engine: EngineProcess) -> None:
    body = (
        START
        + service_task("first", "sem-start-first", "f0", "f1")
        + service_task("second", "sem-start-second", "f1", "f2")
        + end_event("end", "f2")
        + flow("f0", "start", "first")
        + flow("f1", "first", "second")
        + flow("f2", "second", "end")
    )
    instant = START + end_event("end", "f0") + flow("f0", "start", "end")
    with gateway(engine.address) as stub:
        deploy(stub, "start.bpmn", process_xml("sem-start", body))
        deploy(stub, "instant.bpmn", process_xml("sem-instant", instant))
        result = stub.CreateProcessInstanceWithResult(
            pb.CreateProcessInstanceWithResultRequest(
                request=pb.CreateProcessInstanceRequest(
                    bpmnProcessId="sem-instant", version=-1, variables='{"a": 1, "b": 2}'
                ),
                fetchVariables=["b"],
            ),
            timeout=20,
        )
        assert json.loads(result.variables) == {"b": 2}
        skipped = stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(
                bpmnProcessId="sem-start",
                version=-1,
                startInstructions=[pb.ProcessInstanceCreationStartInstruction(elementId="second")],
            )
        ).processInstanceKey
        assert activate(stub, "sem-start-first", request_timeout_ms=200) == []
        job = activate_one(stub, "sem-start-second")
        assert job.processInstanceKey == skipped
        complete(stub, job.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, skipped) == "ELEMENT_COMPLETED", what="completion"
        )


def test_modification_activates_inside_an_inactive_subprocess(engine: EngineProcess) -> None:
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
        '<bpmn:startEvent id="sub-start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>'
        + service_task("inside", "sem-mod-inside", "s1", "s2")
        + end_event("sub-end", "s2")
        + flow("s1", "sub-start", "inside")
        + flow("s2", "inside", "sub-end")
        + "</bpmn:subProcess>"
    )
    body = (
        START
        + service_task("before", "sem-mod-before", "f0", "f1")
        + sub
        + end_event("end", "f2")
        + flow("f0", "start", "before")
        + flow("f1", "before", "sub")
        + flow("f2", "sub", "end")
    )
    mod = pb.ModifyProcessInstanceRequest
    with gateway(engine.address) as stub:
        deploy(stub, "mod.bpmn", process_xml("sem-mod", body))
        instance = create(stub, "sem-mod")
        before = activate_one(stub, "sem-mod-before")
        stub.ModifyProcessInstance(
            mod(
                processInstanceKey=instance,
                activateInstructions=[
                    mod.ActivateInstruction(
                        elementId="inside",
                        variableInstructions=[
                            mod.VariableInstruction(variables='{"inSub": 1}', scopeId="sub"),
                            mod.VariableInstruction(variables='{"atRoot": 2}'),
                        ],
                    )
                ],
                terminateInstructions=[
                    mod.TerminateInstruction(elementInstanceKey=before.elementInstanceKey)
                ],
            )
        )
        inside = activate_one(stub, "sem-mod-inside")
        assert values(inside) == {"inSub": 1, "atRoot": 2}
        subs = [
            r
            for r in events(
                engine.data_dir,
                valueType="PROCESS_INSTANCE",
                processInstanceKey=instance,
                elementId="sub",
                intent="ELEMENT_ACTIVATED",
            )
        ]
        assert len(subs) == 1
        # the created sub-process did not start at its start event
        assert not events(
            engine.data_dir, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="sub-start"
        )
        complete(stub, inside.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )


def test_no_matching_condition_without_default_raises_condition_incident(engine: EngineProcess) -> None:
    body = (
        START
        + '<bpmn:exclusiveGateway id="gw"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>yes</bpmn:outgoing>'
        "</bpmn:exclusiveGateway>"
        + service_task("t", "sem-nomatch", "yes", "e")
        + end_event("end", "e")
        + flow("f0", "start", "gw")
        + flow("yes", "gw", "t", "=go = true")
        + flow("e", "t", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "nomatch.bpmn", process_xml("sem-nomatch", body))
        instance = create(stub, "sem-nomatch", {"go": False})
        incident = wait_for(
            lambda: events(
                engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance
            ),
            what="incident",
        )[0]
        assert incident["value"]["errorType"] == "CONDITION_ERROR"
        assert incident["value"]["errorMessage"] == (
            "Expected at least one condition to evaluate to true, or to have a default flow"
        )


def test_call_activity_uses_the_latest_version(engine: EngineProcess) -> None:
    def child(job_type: str) -> bytes:
        return process_xml(
            "sem-versioned-child",
            START
            + service_task("t", job_type, "f0", "f1")
            + end_event("end", "f1")
            + flow("f0", "start", "t")
            + flow("f1", "t", "end"),
        )

    parent = (
        START
        + '<bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="sem-versioned-child"/>'
        "</bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing></bpmn:callActivity>"
        + end_event("end", "f1")
        + flow("f0", "start", "call")
        + flow("f1", "call", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "vchild.bpmn", child("sem-child-v1"))
        deploy(stub, "vparent.bpmn", process_xml("sem-versioned-parent", parent))
        deploy(stub, "vchild.bpmn", child("sem-child-v2"))
        instance = create(stub, "sem-versioned-parent")
        job = activate_one(stub, "sem-child-v2")
        assert job.processDefinitionVersion == 2
        complete(stub, job.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )


def test_error_end_event_caught_by_subprocess_boundary(engine: EngineProcess) -> None:
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
        '<bpmn:startEvent id="sub-start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:endEvent id="fail"><bpmn:incoming>s1</bpmn:incoming><bpmn:errorEventDefinition errorRef="err"/></bpmn:endEvent>'
        + flow("s1", "sub-start", "fail")
        + "</bpmn:subProcess>"
        '<bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:outgoing>c1</bpmn:outgoing>'
        '<bpmn:errorEventDefinition errorRef="err"/></bpmn:boundaryEvent>'
    )
    body = (
        START
        + sub
        + service_task("handle", "sem-handle", "c1", "c2")
        + end_event("ok", "f1")
        + end_event("handled", "c2")
        + flow("f0", "start", "sub")
        + flow("f1", "sub", "ok")
        + flow("c1", "caught", "handle")
        + flow("c2", "handle", "handled")
    )
    with gateway(engine.address) as stub:
        deploy(
            stub, "errend.bpmn", process_xml("sem-error-end", body, '<bpmn:error id="err" errorCode="E1"/>')
        )
        instance = create(stub, "sem-error-end")
        job = activate_one(stub, "sem-handle")
        assert job.processInstanceKey == instance
        complete(stub, job.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )
        sub_key = events(
            engine.data_dir, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="sub"
        )[0]["key"]
        assert instance_state(engine.data_dir, sub_key) == "ELEMENT_TERMINATED"


def test_user_task_job_with_feel_assignee_header(engine: EngineProcess) -> None:
    body = (
        START + '<bpmn:userTask id="approve"><bpmn:extensionElements>'
        '<zeebe:assignmentDefinition assignee="=owner" candidateGroups="ops, admins"/>'
        '<zeebe:taskHeaders><zeebe:header key="kind" value="approval"/></zeebe:taskHeaders>'
        "</bpmn:extensionElements><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing></bpmn:userTask>"
        + end_event("end", "f1")
        + flow("f0", "start", "approve")
        + flow("f1", "approve", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "user.bpmn", process_xml("sem-user", body))
        create(stub, "sem-user", {"owner": "alice"})
        job = activate_one(stub, "io.camunda.zeebe:userTask")
        headers = json.loads(job.customHeaders)
        assert headers["io.camunda.zeebe:assignee"] == "alice"
        assert headers["kind"] == "approval"
        assert "ops" in headers["io.camunda.zeebe:candidateGroups"]
        complete(stub, job.key)


def test_modification_rejects_activation_into_a_scope_being_terminated(engine: EngineProcess) -> None:
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
        '<bpmn:startEvent id="sub-start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>'
        + service_task("a", "sem-conflict-a", "s1", "s2")
        + service_task("b", "sem-conflict-b", "s2", "s3")
        + end_event("sub-end", "s3")
        + flow("s1", "sub-start", "a")
        + flow("s2", "a", "b")
        + flow("s3", "b", "sub-end")
        + "</bpmn:subProcess>"
    )
    body = START + sub + end_event("end", "f1") + flow("f0", "start", "sub") + flow("f1", "sub", "end")
    mod = pb.ModifyProcessInstanceRequest
    with gateway(engine.address) as stub:
        deploy(stub, "conflict.bpmn", process_xml("sem-conflict", body))
        instance = create(stub, "sem-conflict")
        job = activate_one(stub, "sem-conflict-a")
        sub_key = events(
            engine.data_dir, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="sub"
        )[0]["key"]
        with pytest.raises(grpc.RpcError) as error:
            stub.ModifyProcessInstance(
                mod(
                    processInstanceKey=instance,
                    activateInstructions=[mod.ActivateInstruction(elementId="b")],
                    terminateInstructions=[mod.TerminateInstruction(elementInstanceKey=sub_key)],
                )
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"requires flow scope instance '{sub_key}' which is being terminated" in error.value.details()
        # skipping inside the sub-process works: terminate a, activate b
        stub.ModifyProcessInstance(
            mod(
                processInstanceKey=instance,
                activateInstructions=[mod.ActivateInstruction(elementId="b")],
                terminateInstructions=[mod.TerminateInstruction(elementInstanceKey=job.elementInstanceKey)],
            )
        )
        complete(stub, activate_one(stub, "sem-conflict-b").key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )


def test_terminate_end_event_kills_tokens_still_on_their_way(engine: EngineProcess) -> None:
    body = (
        START
        + '<bpmn:parallelGateway id="fork"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>a</bpmn:outgoing>'
        "<bpmn:outgoing>b</bpmn:outgoing></bpmn:parallelGateway>"
        + end_event("kill", "a", TERMINATE)
        + '<bpmn:exclusiveGateway id="pass"><bpmn:incoming>b</bpmn:incoming><bpmn:outgoing>b2</bpmn:outgoing></bpmn:exclusiveGateway>'
        + service_task("late", "sem-late", "b2", "b3")
        + end_event("normal", "b3")
        + flow("f0", "start", "fork")
        + flow("a", "fork", "kill")
        + flow("b", "fork", "pass")
        + flow("b2", "pass", "late")
        + flow("b3", "late", "normal")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "race.bpmn", process_xml("sem-race", body))
        instance = create(stub, "sem-race")
        assert instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED"
        assert not events(
            engine.data_dir, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="late"
        )
        assert activate(stub, "sem-late", request_timeout_ms=100) == []


def test_specific_error_boundary_beats_catch_all(engine: EngineProcess) -> None:
    body = (
        START
        + service_task("risky", "sem-risky", "f0", "f1")
        + '<bpmn:boundaryEvent id="any" attachedToRef="risky"><bpmn:outgoing>x1</bpmn:outgoing>'
        "<bpmn:errorEventDefinition/></bpmn:boundaryEvent>"
        '<bpmn:boundaryEvent id="specific" attachedToRef="risky"><bpmn:outgoing>y1</bpmn:outgoing>'
        '<bpmn:errorEventDefinition errorRef="known"/></bpmn:boundaryEvent>'
        + service_task("after-any", "sem-after-any", "x1", "x2")
        + service_task("after-specific", "sem-after-specific", "y1", "y2")
        + end_event("e0", "f1")
        + end_event("e1", "x2")
        + end_event("e2", "y2")
        + flow("f0", "start", "risky")
        + flow("f1", "risky", "e0")
        + flow("x1", "any", "after-any")
        + flow("y1", "specific", "after-specific")
        + flow("x2", "after-any", "e1")
        + flow("y2", "after-specific", "e2")
    )
    with gateway(engine.address) as stub:
        deploy(
            stub, "catch.bpmn", process_xml("sem-catch", body, '<bpmn:error id="known" errorCode="KNOWN"/>')
        )
        specific = create(stub, "sem-catch")
        other = create(stub, "sem-catch")
        jobs = {
            job.processInstanceKey: job
            for job in activate(stub, "sem-risky", max_jobs=2, request_timeout_ms=3000)
        }
        if len(jobs) < 2:
            jobs.update(
                {
                    job.processInstanceKey: job
                    for job in activate(stub, "sem-risky", max_jobs=2, request_timeout_ms=3000)
                }
            )
        stub.ThrowError(pb.ThrowErrorRequest(jobKey=jobs[specific].key, errorCode="KNOWN"))
        stub.ThrowError(pb.ThrowErrorRequest(jobKey=jobs[other].key, errorCode="SOMETHING_ELSE"))
        assert activate_one(stub, "sem-after-specific").processInstanceKey == specific
        assert activate_one(stub, "sem-after-any").processInstanceKey == other
