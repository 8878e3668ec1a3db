"""Issue 8: an expression that would stall the engine becomes an incident on its element (or, for
a catastrophic regex, simply evaluates in linear time), and other instances keep flowing (real
`python -m engine` over gRPC)."""

from __future__ import annotations

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate,
    create,
    deploy,
    events,
    flow,
    gateway,
    one_task_process,
    process_xml,
    service_task,
)

STALL = "=count(for x in 1..1999999 return for y in 1..10 return y)"
REGEX_INPUT = "a" * 40 + "!"


def stalling_mapping_process() -> bytes:
    mapping = f'<zeebe:ioMapping><zeebe:input source="{STALL}" target="n"/></zeebe:ioMapping>'
    return one_task_process("stall-flow", "stall-work", extension=mapping)


def regex_gateway_process() -> bytes:
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:exclusiveGateway id="gw" default="f2"><bpmn:incoming>f0</bpmn:incoming>'
        "<bpmn:outgoing>f1</bpmn:outgoing><bpmn:outgoing>f2</bpmn:outgoing></bpmn:exclusiveGateway>"
        + service_task("matched", "regex-matched", "f1", "f3")
        + service_task("unmatched", "regex-unmatched", "f2", "f4")
        + '<bpmn:endEvent id="e1"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
        + '<bpmn:endEvent id="e2"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>'
        + flow("f0", "start", "gw")
        + flow("f1", "gw", "matched", '=matches(s, "(a+)+$")')
        + flow("f2", "gw", "unmatched")
        + flow("f3", "matched", "e1")
        + flow("f4", "unmatched", "e2")
    )
    return process_xml("regex-flow", body)


def test_an_expression_over_budget_is_an_incident_and_others_keep_flowing(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "stall.bpmn", stalling_mapping_process())
        deploy(stub, "calm.bpmn", one_task_process("calm-flow", "calm-work"))
        stalled = [create(stub, "stall-flow") for _ in range(3)]
        calm = {create(stub, "calm-flow") for _ in range(3)}
        assert {
            job.processInstanceKey for job in activate(stub, "calm-work", request_timeout_ms=2000)
        } == calm
        assert activate(stub, "stall-work", request_timeout_ms=200) == []
    for key in stalled:
        incidents = events(engine.data_dir, valueType="INCIDENT", processInstanceKey=key)
        assert [i["value"]["errorType"] for i in incidents] == ["IO_MAPPING_ERROR"]
        assert incidents[0]["value"]["elementId"] == "task"
        assert "budget exhausted" in incidents[0]["value"]["errorMessage"]


def test_a_catastrophic_regex_in_a_condition_is_evaluated_in_linear_time(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "regex.bpmn", regex_gateway_process())
        keys = {create(stub, "regex-flow", {"s": REGEX_INPUT}) for _ in range(3)}
        jobs = activate(stub, "regex-unmatched", max_jobs=5, request_timeout_ms=5000)
        assert {job.processInstanceKey for job in jobs} == keys
