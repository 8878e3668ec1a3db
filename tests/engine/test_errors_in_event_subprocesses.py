"""What is thrown inside an interrupting event sub-process is not caught by the scope it
interrupted (Zeebe's CatchEventAnalyzer stops its walk at an interrupted scope, then goes on in
the calling process). Before, a catch-all error or escalation event sub-process caught its own
inner throw again, terminated itself and started anew, forever: one deployed model hung the
engine's event loop (every partition, every client). Through the real gRPC gateway of
`python -m engine`; each scenario is bounded, so a loop fails it instead of hanging the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate_one,
    create,
    deploy,
    events,
    flow,
    gateway,
    instance_state,
    pi_intents,
    process_xml,
    service_task,
    wait_for,
)
from tests.support.bpmn import START, end_event, throw_event

ERROR = '<bpmn:errorEventDefinition errorRef="x"/>'
ERRORS = '<bpmn:error id="x" errorCode="X"/>'
ESCALATION = '<bpmn:escalationEventDefinition escalationRef="e"/>'
ESCALATIONS = '<bpmn:escalation id="e" escalationCode="E"/>'

pytestmark = pytest.mark.timeout(120)


def catch_all_sub_process(sub_id: str, start_definition: str, inner: str, inner_flows: str) -> str:
    """An interrupting event sub-process: start (catch-all `start_definition`) -> inner."""
    return (
        f'<bpmn:subProcess id="{sub_id}" triggeredByEvent="true">'
        f'<bpmn:startEvent id="{sub_id}-start"><bpmn:outgoing>{sub_id}-f1</bpmn:outgoing>'
        f"{start_definition}</bpmn:startEvent>{inner}{inner_flows}</bpmn:subProcess>"
    )


def unhandled(data_dir: Path, instance: int) -> list[dict]:
    return [
        record
        for record in events(data_dir, valueType="INCIDENT", intent="CREATED")
        if record["value"]["processInstanceKey"] == instance
    ]


def still_serving(engine: EngineProcess) -> None:
    """The engine answers on: a topology call within a short deadline."""
    with gateway(engine.address) as stub:
        assert stub.Topology(pb.TopologyRequest(), timeout=5).brokers


def test_an_error_end_event_inside_a_catch_all_error_event_sub_process_raises_an_incident(
    engine: EngineProcess,
) -> None:
    body = (
        START
        + end_event("main-error", "f0", ERROR)
        + flow("f0", "start", "main-error")
        + catch_all_sub_process(
            "handler",
            "<bpmn:errorEventDefinition/>",
            end_event("inner-error", "handler-f1", ERROR),
            flow("handler-f1", "handler-start", "inner-error"),
        )
    )
    with gateway(engine.address) as stub:
        deploy(stub, "esp-rethrow.bpmn", process_xml("esp-rethrow", body, ERRORS))
        instance = create(stub, "esp-rethrow")
    [incident] = wait_for(lambda: unhandled(engine.data_dir, instance), 15, "the incident of the inner error")
    assert incident["value"]["errorType"] == "UNHANDLED_ERROR_EVENT"
    assert incident["value"]["elementId"] == "inner-error"
    assert incident["value"]["errorMessage"] == (
        "Expected to throw an error event with the code 'X', but it was not caught. "
        "No error events are available in the scope."
    )
    assert pi_intents(engine.data_dir, instance, "handler").count("ELEMENT_ACTIVATED") == 1
    assert instance_state(engine.data_dir, instance) == "ELEMENT_ACTIVATED"
    still_serving(engine)


def test_a_job_error_inside_the_event_sub_process_is_an_incident_also_after_a_restart(
    fresh_engine: EngineProcess,
) -> None:
    """The interrupted mark is state: rebuilt from the log or a snapshot after a restart."""
    body = (
        START
        + service_task("work", "rethrow-work", "f0", "f1")
        + end_event("end", "f1")
        + flow("f0", "start", "work")
        + flow("f1", "work", "end")
        + catch_all_sub_process(
            "handler",
            "<bpmn:errorEventDefinition/>",
            service_task("handle", "rethrow-handle", "handler-f1", "handler-f2")
            + end_event("handler-end", "handler-f2"),
            flow("handler-f1", "handler-start", "handle") + flow("handler-f2", "handle", "handler-end"),
        )
    )
    engine = fresh_engine
    with gateway(engine.address) as stub:
        deploy(stub, "job-rethrow.bpmn", process_xml("job-rethrow", body))
        instance = create(stub, "job-rethrow")
        job = activate_one(stub, "rethrow-work")
        stub.ThrowError(
            pb.ThrowErrorRequest(jobKey=job.key, errorCode="FAIL", errorMessage="first"), timeout=10
        )
        handle = activate_one(stub, "rethrow-handle")
    engine.stop()
    engine.start()
    with gateway(engine.address) as stub:
        stub.ThrowError(
            pb.ThrowErrorRequest(jobKey=handle.key, errorCode="FAIL", errorMessage="again"), timeout=10
        )
    [incident] = wait_for(
        lambda: unhandled(engine.data_dir, instance), 15, "the incident of the second error"
    )
    assert incident["value"]["elementId"] == "handle"
    assert incident["value"]["errorMessage"] == (
        "Expected to throw an error event with the code 'FAIL' with message 'again', but it was not "
        "caught. No error events are available in the scope."
    )
    assert pi_intents(engine.data_dir, instance, "handler").count("ELEMENT_ACTIVATED") == 1
    still_serving(engine)


def test_the_calling_process_still_catches_what_its_child_s_event_sub_process_throws(
    engine: EngineProcess,
) -> None:
    child = (
        START
        + end_event("child-error", "f0", ERROR)
        + flow("f0", "start", "child-error")
        + catch_all_sub_process(
            "child-handler",
            "<bpmn:errorEventDefinition/>",
            end_event("child-inner-error", "child-handler-f1", ERROR),
            flow("child-handler-f1", "child-handler-start", "child-inner-error"),
        )
    )
    parent = (
        START
        + '<bpmn:callActivity id="call"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
        '<bpmn:extensionElements><zeebe:calledElement processId="esp-child" propagateAllChildVariables="false"/>'
        "</bpmn:extensionElements></bpmn:callActivity>"
        + end_event("done", "f1")
        + '<bpmn:boundaryEvent id="caught" attachedToRef="call"><bpmn:outgoing>f2</bpmn:outgoing>'
        + ERROR
        + "</bpmn:boundaryEvent>"
        + end_event("caught-end", "f2")
        + flow("f0", "start", "call")
        + flow("f1", "call", "done")
        + flow("f2", "caught", "caught-end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "esp-child.bpmn", process_xml("esp-child", child, ERRORS))
        deploy(stub, "esp-parent.bpmn", process_xml("esp-parent", parent, ERRORS))
        instance = create(stub, "esp-parent")
    wait_for(
        lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", 15, "the parent to end"
    )
    assert pi_intents(engine.data_dir, instance, "caught-end")[-1] == "ELEMENT_COMPLETED"
    assert not pi_intents(engine.data_dir, instance, "done")
    assert not unhandled(engine.data_dir, instance)
    still_serving(engine)


def test_an_escalation_inside_a_catch_all_escalation_event_sub_process_is_not_escalated_again(
    engine: EngineProcess,
) -> None:
    body = (
        START
        + throw_event("raise", "f0", "f1", ESCALATION)
        + end_event("end", "f1")
        + flow("f0", "start", "raise")
        + flow("f1", "raise", "end")
        + catch_all_sub_process(
            "on-escalation",
            "<bpmn:escalationEventDefinition/>",
            throw_event("raise-again", "on-escalation-f1", "on-escalation-f2", ESCALATION)
            + end_event("handled", "on-escalation-f2"),
            flow("on-escalation-f1", "on-escalation-start", "raise-again")
            + flow("on-escalation-f2", "raise-again", "handled"),
        )
    )
    with gateway(engine.address) as stub:
        deploy(stub, "esc-rethrow.bpmn", process_xml("esc-rethrow", body, ESCALATIONS))
        instance = create(stub, "esc-rethrow")
    wait_for(
        lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", 15, "the instance to end"
    )
    outcomes = [
        (record["intent"], record["value"]["throwElementId"], record["value"]["catchElementId"])
        for record in events(engine.data_dir, valueType="ESCALATION")
        if record["value"]["processInstanceKey"] == instance
    ]
    assert outcomes == [
        ("ESCALATED", "raise", "on-escalation-start"),
        ("NOT_ESCALATED", "raise-again", ""),
    ]
    assert pi_intents(engine.data_dir, instance, "handled")[-1] == "ELEMENT_COMPLETED"
    still_serving(engine)
