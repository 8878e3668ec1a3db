"""Cancel cascades through call activities; process instance modification, incl. the
operator "skip" (terminate the stuck task, activate what its outgoing flow leads to)."""

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

Mod = pb.ModifyProcessInstanceRequest

CHILD = process_xml(
    "cancel-child",
    '<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + service_task("child-task", "cancel-child-work", "f1", "f2")
    + '<bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    + flow("f1", "s", "child-task")
    + flow("f2", "child-task", "e"),
)
PARENT = process_xml(
    "cancel-parent",
    '<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    '<bpmn:parallelGateway id="fork"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>a</bpmn:outgoing>'
    "<bpmn:outgoing>b</bpmn:outgoing></bpmn:parallelGateway>"
    '<bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="cancel-child"/>'
    "</bpmn:extensionElements><bpmn:incoming>a</bpmn:incoming><bpmn:outgoing>a2</bpmn:outgoing></bpmn:callActivity>"
    + service_task("parent-task", "cancel-parent-work", "b", "b2")
    + '<bpmn:endEvent id="e1"><bpmn:incoming>a2</bpmn:incoming></bpmn:endEvent>'
    '<bpmn:endEvent id="e2"><bpmn:incoming>b2</bpmn:incoming></bpmn:endEvent>'
    + flow("f1", "s", "fork")
    + flow("a", "fork", "call")
    + flow("b", "fork", "parent-task")
    + flow("a2", "call", "e1")
    + flow("b2", "parent-task", "e2"),
)

SKIP = process_xml(
    "skip-flow",
    '<bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + service_task("stuck", "skip-stuck", "f1", "f2")
    + service_task("next", "skip-next", "f2", "f3")
    + '<bpmn:endEvent id="e"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
    + flow("f1", "s", "stuck")
    + flow("f2", "stuck", "next")
    + flow("f3", "next", "e"),
)


def test_cancel_terminates_the_whole_tree_bottom_up(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "cancel-child.bpmn", CHILD)
        deploy(stub, "cancel-parent.bpmn", PARENT)
        root = create(stub, "cancel-parent")
        child_job = activate_one(stub, "cancel-child-work")
        # put an incident in the tree too: fail the parent's own task without retries
        parent_job = activate_one(stub, "cancel-parent-work")
        stub.FailJob(pb.FailJobRequest(jobKey=parent_job.key, retries=0, errorMessage="stuck"))
        child_root = child_job.processInstanceKey

        with pytest.raises(grpc.RpcError) as not_root:
            stub.CancelProcessInstance(pb.CancelProcessInstanceRequest(processInstanceKey=child_root))
        assert not_root.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        stub.CancelProcessInstance(pb.CancelProcessInstanceRequest(processInstanceKey=root))
        data = engine.data_dir
        assert instance_state(data, root) == "ELEMENT_TERMINATED"
        assert instance_state(data, child_root) == "ELEMENT_TERMINATED"
        assert instance_state(data, child_job.elementInstanceKey) == "ELEMENT_TERMINATED"
        canceled = {r["key"] for r in events(data, valueType="JOB", intent="CANCELED")}
        assert {child_job.key, parent_job.key} <= canceled
        incident = events(data, valueType="INCIDENT", intent="CREATED", jobKey=parent_job.key)[0]
        assert events(data, valueType="INCIDENT", intent="RESOLVED", key=incident["key"])

        # order: the child task ends before the child process, which ends before the root
        terminated = [
            r["key"] for r in events(data, valueType="PROCESS_INSTANCE", intent="ELEMENT_TERMINATED")
        ]
        assert (
            terminated.index(child_job.elementInstanceKey)
            < terminated.index(child_root)
            < terminated.index(root)
        )
        # workers racing the cancel get NOT_FOUND
        with pytest.raises(grpc.RpcError) as gone:
            complete(stub, child_job.key)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as again:
            stub.CancelProcessInstance(pb.CancelProcessInstanceRequest(processInstanceKey=root))
        assert again.value.details() == (
            f"Command 'CANCEL' rejected with code 'NOT_FOUND': Expected to cancel a process instance with key "
            f"'{root}', but no such process was found"
        )


def test_skip_a_stuck_task_with_variables(engine: EngineProcess) -> None:
    """Fleetflow's operator skip: terminate the stuck task, activate its successor with variables."""
    with gateway(engine.address) as stub:
        deploy(stub, "skip.bpmn", SKIP)
        instance = create(stub, "skip-flow", {"serverSn": "SN-9"})
        stuck = activate_one(stub, "skip-stuck")
        stub.FailJob(pb.FailJobRequest(jobKey=stuck.key, retries=0, errorMessage="vendor tool down"))
        stub.ModifyProcessInstance(
            Mod(
                processInstanceKey=instance,
                terminateInstructions=[Mod.TerminateInstruction(elementInstanceKey=stuck.elementInstanceKey)],
                activateInstructions=[
                    Mod.ActivateInstruction(
                        elementId="next",
                        ancestorElementInstanceKey=-1,
                        variableInstructions=[
                            Mod.VariableInstruction(variables=json.dumps({"skipped": True}))
                        ],
                    )
                ],
            )
        )
        # the racing worker of the stuck job cannot complete it any more
        with pytest.raises(grpc.RpcError) as raced:
            complete(stub, stuck.key)
        assert raced.value.code() == grpc.StatusCode.NOT_FOUND
        following = activate_one(stub, "skip-next")
        assert following.processInstanceKey == instance
        assert json.loads(following.variables) == {"serverSn": "SN-9", "skipped": True}
        complete(stub, following.key)
        assert wait_for(
            lambda: instance_state(engine.data_dir, instance) == "ELEMENT_COMPLETED", what="completion"
        )
        modified = events(
            engine.data_dir, valueType="PROCESS_INSTANCE_MODIFICATION", intent="MODIFIED", key=instance
        )
        assert len(modified) == 1
        incident = events(engine.data_dir, valueType="INCIDENT", intent="CREATED", jobKey=stuck.key)[0]
        assert events(engine.data_dir, valueType="INCIDENT", intent="RESOLVED", key=incident["key"])


def test_terminating_the_last_element_ends_the_instance(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "skip.bpmn", SKIP)
        instance = create(stub, "skip-flow")
        stuck = activate_one(stub, "skip-stuck")
        stub.ModifyProcessInstance(
            Mod(
                processInstanceKey=instance,
                terminateInstructions=[Mod.TerminateInstruction(elementInstanceKey=stuck.elementInstanceKey)],
            )
        )
        assert instance_state(engine.data_dir, instance) == "ELEMENT_TERMINATED"


def test_modification_validation(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "skip.bpmn", SKIP)
        instance = create(stub, "skip-flow")
        activate_one(stub, "skip-stuck")

        def rejected(request: pb.ModifyProcessInstanceRequest) -> grpc.RpcError:
            with pytest.raises(grpc.RpcError) as error:
                stub.ModifyProcessInstance(request)
            return error.value

        unknown_instance = rejected(Mod(processInstanceKey=instance + 10_000))
        assert unknown_instance.code() == grpc.StatusCode.NOT_FOUND
        assert unknown_instance.details() == (
            f"Command 'MODIFY' rejected with code 'NOT_FOUND': Expected to modify process instance but no process "
            f"instance found with key '{instance + 10_000}'"
        )
        unknown_element = rejected(
            Mod(processInstanceKey=instance, activateInstructions=[Mod.ActivateInstruction(elementId="nope")])
        )
        assert unknown_element.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "could not be found: 'nope'" in unknown_element.details()
        start_event = rejected(
            Mod(processInstanceKey=instance, activateInstructions=[Mod.ActivateInstruction(elementId="s")])
        )
        assert start_event.code() == grpc.StatusCode.INVALID_ARGUMENT
        unknown_target = rejected(
            Mod(
                processInstanceKey=instance,
                terminateInstructions=[Mod.TerminateInstruction(elementInstanceKey=123)],
            )
        )
        assert unknown_target.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad_scope = rejected(
            Mod(
                processInstanceKey=instance,
                activateInstructions=[
                    Mod.ActivateInstruction(
                        elementId="next",
                        variableInstructions=[Mod.VariableInstruction(variables="{}", scopeId="ghost")],
                    )
                ],
            )
        )
        assert bad_scope.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad_ancestor = rejected(
            Mod(
                processInstanceKey=instance,
                activateInstructions=[
                    Mod.ActivateInstruction(elementId="next", ancestorElementInstanceKey=999)
                ],
            )
        )
        assert bad_ancestor.code() == grpc.StatusCode.INVALID_ARGUMENT
        # nothing was changed by the rejected commands: the stuck task is still the only job
        assert activate(stub, "skip-next", request_timeout_ms=100) == []
        assert instance_state(engine.data_dir, instance) == "ELEMENT_ACTIVATED"


def test_child_instance_cannot_be_emptied_by_modification(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "cancel-child.bpmn", CHILD)
        deploy(stub, "cancel-parent.bpmn", PARENT)
        root = create(stub, "cancel-parent")
        child_job = activate_one(stub, "cancel-child-work")
        with pytest.raises(grpc.RpcError) as error:
            stub.ModifyProcessInstance(
                Mod(
                    processInstanceKey=child_job.processInstanceKey,
                    terminateInstructions=[
                        Mod.TerminateInstruction(elementInstanceKey=child_job.elementInstanceKey)
                    ],
                )
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "would terminate the instance" in error.value.details()
        stub.CancelProcessInstance(pb.CancelProcessInstanceRequest(processInstanceKey=root))
