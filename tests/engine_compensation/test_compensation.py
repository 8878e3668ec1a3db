"""Compensation (Zeebe 8.5) through a real gRPC client against `python -m engine`: compensation
boundary events and handlers (job-based, ordinary jobs for workers), intermediate throw events
with and without activityRef, a compensation end event, an activity that did not complete is
not compensated, compensation reaching into a completed embedded sub-process, a handler
incident resolved, a multi-instance activity compensated once, an activity completed twice
compensated twice, a saga run by pyzeebe workers, and subscriptions surviving a kill -9
restart."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pyzeebe import ZeebeClient, ZeebeWorker, create_insecure_channel
from pyzeebe.errors import BusinessError
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
from tests.support.bpmn import end_event, start_event, throw_event


def compensable(task_id: str, job_type: str, incoming: str, outgoing: str) -> str:
    """A service task with a compensation boundary event and its handler (job `undo-<job_type>`)."""
    return (
        service_task(task_id, job_type, incoming, outgoing)
        + f'<bpmn:boundaryEvent id="{task_id}_comp" attachedToRef="{task_id}">'
        "<bpmn:compensateEventDefinition/></bpmn:boundaryEvent>"
        f'<bpmn:serviceTask id="undo_{task_id}" isForCompensation="true"><bpmn:extensionElements>'
        f'<zeebe:taskDefinition type="undo-{job_type}"/></bpmn:extensionElements></bpmn:serviceTask>'
        f'<bpmn:association id="{task_id}_assoc" associationDirection="One" '
        f'sourceRef="{task_id}_comp" targetRef="undo_{task_id}"/>'
    )


def compensate_definition(activity_ref: str | None = None) -> str:
    """Compensates the activity `activity_ref`, or, without it, every completed activity of the scope."""
    ref = f' activityRef="{activity_ref}"' if activity_ref else ""
    return f"<bpmn:compensateEventDefinition{ref}/>"


def two_tasks_then_throw(process_id: str, prefix: str, activity_ref: str | None = None) -> bytes:
    body = (
        start_event("start", "f1")
        + compensable("A", f"{prefix}-a", "f1", "f2")
        + compensable("B", f"{prefix}-b", "f2", "f3")
        + throw_event("compensate", "f3", "f4", compensate_definition(activity_ref))
        + service_task("after", f"{prefix}-after", "f4", "f5")
        + end_event("end", "f5")
        + flow("f1", "start", "A")
        + flow("f2", "A", "B")
        + flow("f3", "B", "compensate")
        + flow("f4", "compensate", "after")
        + flow("f5", "after", "end")
    )
    return process_xml(process_id, body)


def subscriptions(engine: EngineProcess, instance_key: int, intent: str) -> list[dict[str, Any]]:
    return events(
        engine.data_dir, valueType="COMPENSATION_SUBSCRIPTION", intent=intent, processInstanceKey=instance_key
    )


def element_records(engine: EngineProcess, instance_key: int, element_id: str) -> list[dict[str, Any]]:
    return events(
        engine.data_dir, valueType="PROCESS_INSTANCE", processInstanceKey=instance_key, elementId=element_id
    )


def none_of(stub: Any, job_type: str) -> None:
    assert activate(stub, job_type, request_timeout_ms=300) == []


def test_throw_without_activity_ref_compensates_every_completed_activity(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "comp-all.bpmn", two_tasks_then_throw("comp-all", "ca"))
        key = create(stub, "comp-all")
        complete(stub, activate_one(stub, "ca-a").key, {"bookingId": 7})
        complete(stub, activate_one(stub, "ca-b").key, {"invoiceId": "inv-1"})
        created = wait_for(
            lambda: len(subscriptions(engine, key, "CREATED")) == 2 and subscriptions(engine, key, "CREATED")
        )
        assert [s["value"]["compensableActivityId"] for s in created] == ["A", "B"]
        assert {s["value"]["compensationHandlerId"] for s in created} == {"undo_A", "undo_B"}
        assert all(s["value"]["compensableActivityScopeKey"] == key for s in created)

        undo_a = activate_one(stub, "undo-ca-a", fetch=["bookingId", "invoiceId"])
        undo_b = activate_one(stub, "undo-ca-b")
        # a handler is an ordinary job that sees the variables of the throw event's scope
        assert json.loads(undo_a.variables) == {"bookingId": 7, "invoiceId": "inv-1"}
        assert undo_a.elementId == "undo_A" and undo_b.elementId == "undo_B"
        throw_key = element_records(engine, key, "compensate")[0]["key"]
        assert instance_state(engine.data_dir, throw_key) == "ELEMENT_ACTIVATED"
        none_of(stub, "ca-after")  # the throw event waits for its handlers

        complete(stub, undo_a.key)
        wait_for(lambda: len(subscriptions(engine, key, "COMPLETED")) == 1)
        assert instance_state(engine.data_dir, throw_key) == "ELEMENT_ACTIVATED"
        complete(stub, undo_b.key)
        wait_for(lambda: instance_state(engine.data_dir, throw_key) == "ELEMENT_COMPLETED")
        complete(stub, activate_one(stub, "ca-after").key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")

    triggered = subscriptions(engine, key, "TRIGGERED")
    assert len(triggered) == 2
    assert all(t["value"]["throwEventId"] == "compensate" for t in triggered)
    assert all(t["value"]["throwEventInstanceKey"] == throw_key for t in triggered)
    handlers = {t["value"]["compensationHandlerInstanceKey"] for t in triggered}
    assert handlers == {undo_a.elementInstanceKey, undo_b.elementInstanceKey}
    # the handler's records say COMPENSATION; the boundary event passes through in the throw's scope
    handler_record = element_records(engine, key, "undo_A")[0]["value"]
    assert handler_record["bpmnEventType"] == "COMPENSATION"
    assert handler_record["flowScopeKey"] == key
    boundary = [r["intent"] for r in element_records(engine, key, "A_comp")]
    assert boundary == ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED", "ELEMENT_COMPLETING", "ELEMENT_COMPLETED"]
    assert len(subscriptions(engine, key, "COMPLETED")) == 2
    assert subscriptions(engine, key, "DELETED") == []  # nothing left to delete


def test_throw_with_activity_ref_compensates_only_that_activity(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "comp-ref.bpmn", two_tasks_then_throw("comp-ref", "cr", activity_ref="A"))
        key = create(stub, "comp-ref")
        complete(stub, activate_one(stub, "cr-a").key)
        complete(stub, activate_one(stub, "cr-b").key)
        complete(stub, activate_one(stub, "undo-cr-a").key)
        none_of(stub, "undo-cr-b")
        complete(stub, activate_one(stub, "cr-after").key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
    assert [t["value"]["compensableActivityId"] for t in subscriptions(engine, key, "TRIGGERED")] == ["A"]
    # B was never compensated: its subscription is deleted with the process instance
    assert [d["value"]["compensableActivityId"] for d in subscriptions(engine, key, "DELETED")] == ["B"]


def test_end_event_compensates_completed_activities_only(engine: EngineProcess) -> None:
    """A compensation end event on one branch: A completed and is compensated; W, still
    active on the other branch, is not."""
    body = (
        start_event("start", "f1") + '<bpmn:parallelGateway id="fork"><bpmn:incoming>f1</bpmn:incoming>'
        "<bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing></bpmn:parallelGateway>"
        + compensable("A", "ce-a", "f2", "f3")
        + end_event("compEnd", "f3", compensate_definition())
        + compensable("W", "ce-w", "f4", "f5")
        + end_event("end", "f5")
        + flow("f1", "start", "fork")
        + flow("f2", "fork", "A")
        + flow("f3", "A", "compEnd")
        + flow("f4", "fork", "W")
        + flow("f5", "W", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-end.bpmn", process_xml("comp-end", body))
        key = create(stub, "comp-end")
        waiting_w = activate_one(stub, "ce-w")
        complete(stub, activate_one(stub, "ce-a").key)
        undo_a = activate_one(stub, "undo-ce-a")
        none_of(stub, "undo-ce-w")
        end_key = element_records(engine, key, "compEnd")[0]["key"]
        assert instance_state(engine.data_dir, end_key) == "ELEMENT_ACTIVATED"
        complete(stub, undo_a.key)
        wait_for(lambda: instance_state(engine.data_dir, end_key) == "ELEMENT_COMPLETED")
        assert instance_state(engine.data_dir, key) == "ELEMENT_ACTIVATED"
        complete(stub, waiting_w.key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
        none_of(stub, "undo-ce-w")
    assert [d["value"]["compensableActivityId"] for d in subscriptions(engine, key, "DELETED")] == ["W"]


def test_nothing_to_compensate_completes_the_throw_event_at_once(engine: EngineProcess) -> None:
    body = (
        start_event("start", "f1")
        + throw_event("compensate", "f1", "f2", compensate_definition())
        + compensable("A", "cn-a", "f2", "f3")
        + end_event("end", "f3")
        + flow("f1", "start", "compensate")
        + flow("f2", "compensate", "A")
        + flow("f3", "A", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-none.bpmn", process_xml("comp-none", body))
        key = create(stub, "comp-none")
        complete(stub, activate_one(stub, "cn-a").key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
        none_of(stub, "undo-cn-a")
    assert [d["value"]["compensableActivityId"] for d in subscriptions(engine, key, "DELETED")] == ["A"]


def test_compensation_reaches_into_a_completed_sub_process(engine: EngineProcess) -> None:
    body = (
        start_event("start", "f1")
        + '<bpmn:subProcess id="sub"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
        + start_event("subStart", "s1")
        + compensable("A", "cs-a", "s1", "s2")
        + end_event("subEnd", "s2")
        + flow("s1", "subStart", "A")
        + flow("s2", "A", "subEnd")
        + "</bpmn:subProcess>"
        + throw_event("compensate", "f2", "f3", compensate_definition())
        + end_event("end", "f3")
        + flow("f1", "start", "sub")
        + flow("f2", "sub", "compensate")
        + flow("f3", "compensate", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-sub.bpmn", process_xml("comp-sub", body))
        key = create(stub, "comp-sub")
        complete(stub, activate_one(stub, "cs-a").key, {"ticket": "T-1"})
        undo_a = activate_one(stub, "undo-cs-a")
        sub_key = element_records(engine, key, "sub")[0]["key"]
        created = {
            c["value"]["compensableActivityId"]: c["value"] for c in subscriptions(engine, key, "CREATED")
        }
        assert created["A"]["compensableActivityScopeKey"] == sub_key
        assert created["sub"]["compensableActivityScopeKey"] == key
        assert created["sub"]["compensationHandlerId"] == ""
        assert created["sub"]["compensableActivityInstanceKey"] == sub_key
        complete(stub, undo_a.key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
    # the handler ran in the throw event's scope (the sub-process had completed)
    assert element_records(engine, key, "undo_A")[0]["value"]["flowScopeKey"] == key
    assert sorted(c["value"]["compensableActivityId"] for c in subscriptions(engine, key, "COMPLETED")) == [
        "A",
        "sub",
    ]


def test_compensation_inside_a_sub_process_stays_in_its_scope(engine: EngineProcess) -> None:
    """A throw inside the sub-process compensates what completed inside it, not outside."""
    body = (
        start_event("start", "f1")
        + compensable("outer", "ci-outer", "f1", "f2")
        + '<bpmn:subProcess id="sub"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>'
        + start_event("subStart", "s1")
        + compensable("inner", "ci-inner", "s1", "s2")
        + throw_event("compensateInner", "s2", "s3", compensate_definition())
        + end_event("subEnd", "s3")
        + flow("s1", "subStart", "inner")
        + flow("s2", "inner", "compensateInner")
        + flow("s3", "compensateInner", "subEnd")
        + "</bpmn:subProcess>"
        + end_event("end", "f3")
        + flow("f1", "start", "outer")
        + flow("f2", "outer", "sub")
        + flow("f3", "sub", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-inner.bpmn", process_xml("comp-inner", body))
        key = create(stub, "comp-inner")
        complete(stub, activate_one(stub, "ci-outer").key)
        complete(stub, activate_one(stub, "ci-inner").key)
        undo_inner = activate_one(stub, "undo-ci-inner")
        none_of(stub, "undo-ci-outer")
        sub_key = element_records(engine, key, "sub")[0]["key"]
        assert element_records(engine, key, "undo_inner")[0]["value"]["flowScopeKey"] == sub_key
        complete(stub, undo_inner.key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
    assert [d["value"]["compensableActivityId"] for d in subscriptions(engine, key, "DELETED")] == ["outer"]


def test_handler_incident_is_resolved_and_compensation_completes(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "comp-inc.bpmn", two_tasks_then_throw("comp-inc", "ci2", activity_ref="B"))
        key = create(stub, "comp-inc")
        complete(stub, activate_one(stub, "ci2-a").key)
        complete(stub, activate_one(stub, "ci2-b").key)
        undo_b = activate_one(stub, "undo-ci2-b")
        stub.FailJob(
            pb.FailJobRequest(jobKey=undo_b.key, retries=0, errorMessage="rollback API down"), timeout=10
        )
        incident = wait_for(
            lambda: events(engine.data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=key)
        )[0]
        assert incident["value"]["elementId"] == "undo_B"
        assert incident["value"]["errorType"] == "JOB_NO_RETRIES"
        stub.UpdateJobRetries(pb.UpdateJobRetriesRequest(jobKey=undo_b.key, retries=1), timeout=10)
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]), timeout=10)
        complete(stub, activate_one(stub, "undo-ci2-b").key)
        complete(stub, activate_one(stub, "ci2-after").key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
    assert [c["value"]["compensableActivityId"] for c in subscriptions(engine, key, "COMPLETED")] == ["B"]


def test_subscriptions_survive_kill_and_restart(fresh_engine: EngineProcess) -> None:
    engine = fresh_engine
    with gateway(engine.address) as stub:
        deploy(stub, "comp-restart.bpmn", two_tasks_then_throw("comp-restart", "rs"))
        key = create(stub, "comp-restart")
        complete(stub, activate_one(stub, "rs-a").key)
        wait_for(lambda: subscriptions(engine, key, "CREATED"))
    engine.kill()
    engine.start()
    with gateway(engine.address) as stub:
        complete(stub, activate_one(stub, "rs-b").key)
        complete(stub, activate_one(stub, "undo-rs-a").key)
        complete(stub, activate_one(stub, "undo-rs-b").key)
        complete(stub, activate_one(stub, "rs-after").key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")


def test_cancel_while_compensating_deletes_subscriptions_and_cancels_the_handler(
    engine: EngineProcess,
) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "comp-cancel.bpmn", two_tasks_then_throw("comp-cancel", "cc"))
        key = create(stub, "comp-cancel")
        complete(stub, activate_one(stub, "cc-a").key)
        complete(stub, activate_one(stub, "cc-b").key)
        undo_a = activate_one(stub, "undo-cc-a")
        complete(stub, undo_a.key)
        undo_b = activate_one(stub, "undo-cc-b")
        stub.CancelProcessInstance(pb.CancelProcessInstanceRequest(processInstanceKey=key), timeout=10)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_TERMINATED")
        assert events(engine.data_dir, valueType="JOB", intent="CANCELED", key=undo_b.key)
    # A's subscription completed with its handler; B's, triggered but unfinished, is deleted
    assert [c["value"]["compensableActivityId"] for c in subscriptions(engine, key, "COMPLETED")] == ["A"]
    deleted = subscriptions(engine, key, "DELETED")
    assert [d["value"]["compensableActivityId"] for d in deleted] == ["B"]
    assert deleted[0]["value"]["throwEventId"] == "compensate"


def test_multi_instance_activity_is_compensated_once(engine: EngineProcess) -> None:
    """Zeebe: the boundary events of a multi-instance activity belong to its body; the handler
    is invoked once for the activity, not once per item."""
    body = (
        start_event("start", "f1")
        + '<bpmn:serviceTask id="A"><bpmn:extensionElements><zeebe:taskDefinition type="cm-a"/>'
        "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>"
        "<bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements>"
        '<zeebe:loopCharacteristics inputCollection="= items" inputElement="item"/>'
        "</bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics></bpmn:serviceTask>"
        '<bpmn:boundaryEvent id="A_comp" attachedToRef="A"><bpmn:compensateEventDefinition/></bpmn:boundaryEvent>'
        '<bpmn:serviceTask id="undo_A" isForCompensation="true"><bpmn:extensionElements>'
        '<zeebe:taskDefinition type="undo-cm-a"/></bpmn:extensionElements></bpmn:serviceTask>'
        '<bpmn:association id="assoc" associationDirection="One" sourceRef="A_comp" targetRef="undo_A"/>'
        + throw_event("compensate", "f2", "f3", compensate_definition())
        + end_event("end", "f3")
        + flow("f1", "start", "A")
        + flow("f2", "A", "compensate")
        + flow("f3", "compensate", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-mi.bpmn", process_xml("comp-mi", body))
        key = create(stub, "comp-mi", {"items": [1, 2, 3]})
        for _ in range(3):
            complete(stub, activate_one(stub, "cm-a").key)
        complete(stub, activate_one(stub, "undo-cm-a").key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
        none_of(stub, "undo-cm-a")
    created = subscriptions(engine, key, "CREATED")
    assert len(created) == 1
    body_key = next(
        r["key"]
        for r in element_records(engine, key, "A")
        if r["value"]["bpmnElementType"] == "MULTI_INSTANCE_BODY"
    )
    assert created[0]["value"]["compensableActivityInstanceKey"] == body_key


def test_an_activity_completed_twice_is_compensated_twice(engine: EngineProcess) -> None:
    body = (
        start_event("start", "f1")
        + '<bpmn:exclusiveGateway id="merge"><bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>back</bpmn:incoming>'
        "<bpmn:outgoing>f2</bpmn:outgoing></bpmn:exclusiveGateway>"
        + compensable("A", "c2-a", "f2", "f3")
        + '<bpmn:exclusiveGateway id="again"><bpmn:incoming>f3</bpmn:incoming>'
        "<bpmn:outgoing>back</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing></bpmn:exclusiveGateway>"
        + throw_event("compensate", "f4", "f5", compensate_definition())
        + end_event("end", "f5")
        + flow("f1", "start", "merge")
        + flow("f2", "merge", "A")
        + flow("f3", "A", "again")
        + flow("back", "again", "merge", "= runs &lt; 2")
        + flow("f4", "again", "compensate", "= runs &gt;= 2")
        + flow("f5", "compensate", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-twice.bpmn", process_xml("comp-twice", body))
        key = create(stub, "comp-twice")
        complete(stub, activate_one(stub, "c2-a").key, {"runs": 1})
        complete(stub, activate_one(stub, "c2-a").key, {"runs": 2})
        undos = [activate_one(stub, "undo-c2-a"), activate_one(stub, "undo-c2-a")]
        assert len({job.elementInstanceKey for job in undos}) == 2
        for job in undos:
            complete(stub, job.key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
    assert len(subscriptions(engine, key, "COMPLETED")) == 2


def test_saga_with_pyzeebe_workers(engine: EngineProcess) -> None:
    """Book a flight and a hotel, fail the payment with a BPMN error, compensate both bookings
    (handlers are ordinary pyzeebe tasks) and end on the failure path."""
    body = (
        start_event("start", "f1")
        + compensable("flight", "saga-book-flight", "f1", "f2")
        + compensable("hotel", "saga-book-hotel", "f2", "f3")
        + service_task("charge", "saga-charge", "f3", "f4")
        + end_event("paid", "f4")
        + '<bpmn:boundaryEvent id="declined" attachedToRef="charge"><bpmn:outgoing>e1</bpmn:outgoing>'
        '<bpmn:errorEventDefinition errorRef="paymentDeclined"/></bpmn:boundaryEvent>'
        + throw_event("undoBookings", "e1", "e2", compensate_definition())
        + end_event("notPaid", "e2")
        + flow("f1", "start", "flight")
        + flow("f2", "flight", "hotel")
        + flow("f3", "hotel", "charge")
        + flow("f4", "charge", "paid")
        + flow("e1", "declined", "undoBookings")
        + flow("e2", "undoBookings", "notPaid")
    )
    extra = '<bpmn:error id="paymentDeclined" errorCode="payment-declined"/>'
    with gateway(engine.address) as stub:
        deploy(stub, "saga.bpmn", process_xml("saga", body, extra))
    undone: list[str] = []

    async def scenario() -> dict[str, Any]:
        channel = create_insecure_channel(grpc_address=engine.address)
        worker = ZeebeWorker(channel)

        @worker.task("saga-book-flight")
        async def book_flight() -> dict[str, Any]:
            return {"flightId": "LH-400"}

        @worker.task("saga-book-hotel")
        async def book_hotel() -> dict[str, Any]:
            return {"hotelId": "H-7"}

        @worker.task("saga-charge")
        async def charge() -> None:
            raise BusinessError("payment-declined")

        @worker.task("undo-saga-book-flight")
        async def cancel_flight(flightId: str) -> dict[str, Any]:
            undone.append(flightId)
            return {"flightCancelled": True}

        @worker.task("undo-saga-book-hotel")
        async def cancel_hotel(hotelId: str) -> dict[str, Any]:
            undone.append(hotelId)
            return {"hotelCancelled": True}

        work = asyncio.create_task(worker.work())
        try:
            client = ZeebeClient(channel)
            result = await client.run_process_with_result("saga", {}, timeout=60_000)
            return dict(result.variables)
        finally:
            await worker.stop()
            work.cancel()

    variables = asyncio.run(asyncio.wait_for(scenario(), timeout=90))
    assert sorted(undone) == ["H-7", "LH-400"]
    assert variables["flightCancelled"] is True and variables["hotelCancelled"] is True


def test_compensation_end_event_in_an_error_event_sub_process(engine: EngineProcess) -> None:
    """The saga pattern with an event sub-process: an error ends the process's main path and the
    error event sub-process's compensation end event undoes what completed in the process."""
    body = (
        start_event("start", "f1")
        + compensable("A", "ces-a", "f1", "f2")
        + service_task("B", "ces-b", "f2", "f3")
        + end_event("end", "f3")
        + flow("f1", "start", "A")
        + flow("f2", "A", "B")
        + flow("f3", "B", "end")
        + '<bpmn:subProcess id="onError" triggeredByEvent="true">'
        '<bpmn:startEvent id="errStart"><bpmn:outgoing>e1</bpmn:outgoing><bpmn:errorEventDefinition/>'
        "</bpmn:startEvent>"
        + end_event("undoAll", "e1", compensate_definition())
        + flow("e1", "errStart", "undoAll")
        + "</bpmn:subProcess>"
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-esp.bpmn", process_xml("comp-esp", body))
        key = create(stub, "comp-esp")
        complete(stub, activate_one(stub, "ces-a").key)
        failing = activate_one(stub, "ces-b")
        stub.ThrowError(pb.ThrowErrorRequest(jobKey=failing.key, errorCode="boom"), timeout=10)
        undo_a = activate_one(stub, "undo-ces-a")
        event_sub_process_key = element_records(engine, key, "onError")[0]["key"]
        assert element_records(engine, key, "undo_A")[0]["value"]["flowScopeKey"] == event_sub_process_key
        complete(stub, undo_a.key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
    assert [c["value"]["compensableActivityId"] for c in subscriptions(engine, key, "COMPLETED")] == ["A"]


def test_a_manual_task_handler_passes_through_and_the_throw_event_completes(engine: EngineProcess) -> None:
    body = (
        start_event("start", "f1")
        + service_task("A", "cmt-a", "f1", "f2")
        + '<bpmn:boundaryEvent id="A_comp" attachedToRef="A"><bpmn:compensateEventDefinition/></bpmn:boundaryEvent>'
        '<bpmn:manualTask id="undo_A" isForCompensation="true"/>'
        '<bpmn:association id="assoc" associationDirection="One" sourceRef="A_comp" targetRef="undo_A"/>'
        + throw_event("compensate", "f2", "f3", compensate_definition())
        + end_event("end", "f3")
        + flow("f1", "start", "A")
        + flow("f2", "A", "compensate")
        + flow("f3", "compensate", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "comp-manual.bpmn", process_xml("comp-manual", body))
        key = create(stub, "comp-manual")
        complete(stub, activate_one(stub, "cmt-a").key)
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED")
    handler = [r["intent"] for r in element_records(engine, key, "undo_A")]
    assert handler == ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED", "ELEMENT_COMPLETING", "ELEMENT_COMPLETED"]
    assert [c["value"]["compensableActivityId"] for c in subscriptions(engine, key, "COMPLETED")] == ["A"]
