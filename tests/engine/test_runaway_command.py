"""A model that loops without a wait state (a cycle of gateways) is deployable, as in Zeebe, but
one command of it never ended: the engine processed its follow-ups inside that command, so the
event loop (every partition, every client) hung and memory grew until the process died. Now a
command is refused after engine/processing/context.py's MAX_FOLLOW_UPS steps with Zeebe's
EXCEEDED_BATCH_RECORD_SIZE rejection (gRPC UNKNOWN), keeping none of its records, and the engine
goes on serving. Through the real gRPC gateway of `python -m engine`, bounded in time."""

from __future__ import annotations

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import create, deploy, events, flow, gateway, one_task_process, process_xml
from tests.support.bpmn import START

pytestmark = pytest.mark.timeout(120)


def gateway_cycle(process_id: str) -> bytes:
    body = (
        START
        + '<bpmn:exclusiveGateway id="g1"><bpmn:incoming>f0</bpmn:incoming><bpmn:incoming>f2</bpmn:incoming>'
        "<bpmn:outgoing>f1</bpmn:outgoing></bpmn:exclusiveGateway>"
        '<bpmn:exclusiveGateway id="g2"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
        "</bpmn:exclusiveGateway>"
        + flow("f0", "start", "g1")
        + flow("f1", "g1", "g2")
        + flow("f2", "g2", "g1")
    )
    return process_xml(process_id, body)


def test_a_create_that_loops_without_a_wait_state_is_refused_and_the_engine_goes_on(
    engine: EngineProcess,
) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "cycle.bpmn", gateway_cycle("runaway-cycle"))
        deploy(stub, "fine.bpmn", one_task_process("runaway-fine", "runaway-fine-task"))
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId="runaway-cycle", version=-1), timeout=60
            )
        assert refused.value.code() is grpc.StatusCode.UNKNOWN
        details = refused.value.details()
        assert "EXCEEDED_BATCH_RECORD_SIZE" in details and "loops without a wait state" in details, details
        assert "'g1'" in details or "'g2'" in details, details
        # Nothing of the refused command was kept: no instance of it exists.
        assert not [
            record
            for record in events(engine.data_dir, valueType="PROCESS_INSTANCE")
            if record["value"]["bpmnProcessId"] == "runaway-cycle"
        ]
        # The engine answers on, and runs other instances.
        instance = create(stub, "runaway-fine")
        assert instance > 0
        assert stub.Topology(pb.TopologyRequest(), timeout=5).brokers
