"""Signals through real clients (zbctl, pyzeebe) against `python -m engine` with two partitions:
BroadcastSignal (SIGNAL BROADCASTED on every partition under one key), signal start events
(latest version only), intermediate catch events (literal and FEEL names), boundary events
(interrupting, and non-interrupting leaving the task active), intermediate throw and end
events reaching other instances, and signal event subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe import ZeebeClient
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate_one,
    complete,
    create,
    deploy,
    events,
    flow,
    gateway,
    instance_state,
    pi_intents,
    process_xml,
    pyzeebe_call,
    service_task,
    variables_of,
    wait_for,
    write_file,
)
from tests.support.bpmn import START, boundary_event, catch_event, end_event, start_event, throw_event
from tests.zbctl import require_zbctl, run_zbctl


def signal(signal_id: str, name: str) -> str:
    return f'<bpmn:signal id="{signal_id}" name="{name}"/>'


def definition(signal_id: str) -> str:
    return f'<bpmn:signalEventDefinition signalRef="{signal_id}"/>'


def catch_process(process_id: str, signal_name: str) -> bytes:
    body = (
        START
        + catch_event("wait", "f0", "f1", definition("sig"))
        + end_event("end", "f1")
        + flow("f0", "start", "wait")
        + flow("f1", "wait", "end")
    )
    return process_xml(process_id, body, signal("sig", signal_name))


def test_zbctl_broadcast_signal_starts_an_instance_on_every_partition_once(
    engine: EngineProcess, tmp_path: Path
) -> None:
    require_zbctl()
    body = (
        start_event("on-signal", "f0", definition=definition("sig"))
        + end_event("end", "f0")
        + flow("f0", "on-signal", "end")
    )
    path = write_file(tmp_path, "sg-start.bpmn", process_xml("sg-start", body, signal("sig", "sg-rack-down")))
    address, data = engine.address, engine.data_dir
    deployed = run_zbctl(address, "deploy", "resource", str(path))
    assert deployed.returncode == 0, deployed.stderr
    subscriptions = events(data, valueType="SIGNAL_SUBSCRIPTION", bpmnProcessId="sg-start")
    assert [(r["partitionId"], r["intent"]) for r in subscriptions] == [(1, "CREATED")]
    assert subscriptions[0]["value"]["catchEventId"] == "on-signal"
    assert subscriptions[0]["value"]["catchEventInstanceKey"] == -1
    assert subscriptions[0]["value"]["signalName"] == "sg-rack-down"

    result = run_zbctl(address, "broadcast", "signal", "sg-rack-down", "--variables", '{"rack": "R7"}')
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    key = int(answer["key"])
    assert answer.get("tenantId") == "<default>"
    broadcasted = events(data, valueType="SIGNAL", intent="BROADCASTED", key=key)
    # Zeebe distributes the broadcast: one BROADCASTED per partition, all under the first key
    assert sorted(r["partitionId"] for r in broadcasted) == [1, 2]
    assert all(r["value"]["signalName"] == "sg-rack-down" for r in broadcasted)
    assert all(r["value"]["variables"] == {"rack": "R7"} for r in broadcasted)

    def started() -> list[dict[str, Any]]:
        return [
            r
            for r in events(
                data, valueType="PROCESS_INSTANCE", bpmnProcessId="sg-start", intent="ELEMENT_COMPLETED"
            )
            if r["value"]["bpmnElementType"] == "PROCESS"
        ]

    wait_for(lambda: len(started()) == 1, 10, "the signal-started instance")
    instance = started()[0]["key"]
    assert variables_of(data, instance) == {"rack": "R7"}
    # started at the signal start event, without a creation record (as Zeebe)
    assert pi_intents(data, instance, "on-signal")[0] == "ELEMENT_ACTIVATING"
    assert not events(data, valueType="PROCESS_INSTANCE_CREATION", processInstanceKey=instance)

    # a signal nobody listens for is broadcast all the same
    result = run_zbctl(address, "broadcast", "signal", "sg-nobody")
    assert result.returncode == 0, result.stderr
    assert (
        len(events(data, valueType="SIGNAL", intent="BROADCASTED", key=int(json.loads(result.stdout)["key"])))
        == 2
    )


def test_a_new_version_replaces_the_signal_start_subscription(engine: EngineProcess, tmp_path: Path) -> None:
    def version(signal_name: str) -> bytes:
        body = (
            start_event("go", "f0", definition=definition("sig"))
            + end_event("end", "f0")
            + flow("f0", "go", "end")
        )
        return process_xml("sg-versions", body, signal("sig", signal_name))

    data = engine.data_dir
    with gateway(engine.address) as stub:
        first = deploy(stub, "v1.bpmn", version("sg-v1")).deployments[0].process.processDefinitionKey
        deploy(stub, "v2.bpmn", version("sg-v2"))

    async def run(client: ZeebeClient) -> None:
        await client.broadcast_signal("sg-v1")
        await client.broadcast_signal("sg-v2")

    pyzeebe_call(engine.address, run)

    def started() -> list[int]:
        return [
            r["value"]["version"]
            for r in events(
                data, valueType="PROCESS_INSTANCE", bpmnProcessId="sg-versions", intent="ELEMENT_COMPLETED"
            )
            if r["value"]["bpmnElementType"] == "PROCESS"
        ]

    wait_for(lambda: started() == [2], 10, "one instance of version 2")
    deleted = events(data, valueType="SIGNAL_SUBSCRIPTION", intent="DELETED", bpmnProcessId="sg-versions")
    assert [r["value"]["processDefinitionKey"] for r in deleted] == [first]


def test_intermediate_catch_event_with_a_feel_name_completes_with_the_variables(
    engine: EngineProcess, tmp_path: Path
) -> None:
    content = catch_process("sg-catch", "=&quot;sg-ticket-&quot; + ticket")
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "sg-catch.bpmn", content)
        waiting = create(stub, "sg-catch", {"ticket": "T1"})
        other = create(stub, "sg-catch", {"ticket": "T2"})
    wait_for(
        lambda: pi_intents(data, waiting, "wait")[-1:] == ["ELEMENT_ACTIVATED"], 10, "catch event waiting"
    )
    subscription = events(data, valueType="SIGNAL_SUBSCRIPTION", intent="CREATED", catchEventId="wait")
    names = {r["value"]["signalName"] for r in subscription}
    assert {"sg-ticket-T1", "sg-ticket-T2"} <= names

    async def run(client: ZeebeClient) -> None:
        await client.broadcast_signal("sg-ticket-T1", {"answer": 42})

    pyzeebe_call(engine.address, run)
    wait_for(lambda: instance_state(data, waiting) == "ELEMENT_COMPLETED", 10, "the T1 instance")
    assert variables_of(data, waiting)["answer"] == 42
    assert instance_state(data, other) == "ELEMENT_ACTIVATED"  # its name was sg-ticket-T2
    deleted = events(
        data,
        valueType="SIGNAL_SUBSCRIPTION",
        intent="DELETED",
        catchEventInstanceKey=pi_key(data, waiting, "wait"),
    )
    assert len(deleted) == 1
    with gateway(engine.address) as stub:
        stub.CancelProcessInstance(pb.CancelProcessInstanceRequest(processInstanceKey=other), timeout=10)
    wait_for(lambda: instance_state(data, other) == "ELEMENT_TERMINATED", 10, "canceled")
    other_wait = pi_key(data, other, "wait")
    assert [
        r["intent"] for r in events(data, valueType="SIGNAL_SUBSCRIPTION", catchEventInstanceKey=other_wait)
    ] == [
        "CREATED",
        "DELETED",
    ]


def pi_key(data: Path, instance: int, element_id: str) -> int:
    records = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId=element_id)
    return int(records[0]["key"])


@pytest.mark.parametrize("interrupting", [True, False])
def test_signal_boundary_event(engine: EngineProcess, tmp_path: Path, interrupting: bool) -> None:
    process_id = f"sg-boundary-{interrupting}".lower()
    job_type = f"{process_id}-work"
    body = (
        START
        + service_task("task", job_type, "f0", "f1")
        + boundary_event("abort", "task", "f2", definition("sig"), interrupting=interrupting)
        + end_event("done", "f1")
        + end_event("aborted", "f2")
        + flow("f0", "start", "task")
        + flow("f1", "task", "done")
        + flow("f2", "abort", "aborted")
    )
    signal_name = f"{process_id}-now"
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, f"{process_id}.bpmn", process_xml(process_id, body, signal("sig", signal_name)))
        instance = create(stub, process_id)
        wait_for(lambda: pi_intents(data, instance, "task")[-1:] == ["ELEMENT_ACTIVATED"], 10, "task active")

        async def run(client: ZeebeClient) -> None:
            await client.broadcast_signal(signal_name, {"reason": "rack down"})

        pyzeebe_call(engine.address, run)
        wait_for(
            lambda: pi_intents(data, instance, "aborted")[-1:] == ["ELEMENT_COMPLETED"], 10, "boundary path"
        )
        assert variables_of(data, instance)["reason"] == "rack down"
        if interrupting:
            assert pi_intents(data, instance, "task")[-1] == "ELEMENT_TERMINATED"
            assert [r["intent"] for r in events(data, valueType="JOB", processInstanceKey=instance)] == [
                "CREATED",
                "CANCELED",
            ]
            wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 10, "instance done")
            assert not pi_intents(data, instance, "done")
            return
        # non-interrupting: the task stays active with its job, and still listens
        assert pi_intents(data, instance, "task")[-1] == "ELEMENT_ACTIVATED"
        assert instance_state(data, instance) == "ELEMENT_ACTIVATED"
        pyzeebe_call(engine.address, run)
        wait_for(
            lambda: pi_intents(data, instance, "aborted").count("ELEMENT_COMPLETED") == 2,
            10,
            "second boundary path",
        )
        job = activate_one(stub, job_type)
        complete(stub, job.key)
        wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 10, "instance done")
        task_key = pi_key(data, instance, "task")
        assert [
            r["intent"] for r in events(data, valueType="SIGNAL_SUBSCRIPTION", catchEventInstanceKey=task_key)
        ] == [
            "CREATED",
            "DELETED",
        ]


def test_signal_throw_and_end_events_reach_waiting_instances(engine: EngineProcess, tmp_path: Path) -> None:
    data = engine.data_dir
    thrower_body = (
        START
        + throw_event("shout", "f0", "f1", definition("s1"))
        + end_event("last", "f1", definition("s2"))
        + flow("f0", "start", "shout")
        + flow("f1", "shout", "last")
    )
    thrower = process_xml(
        "sg-thrower", thrower_body, signal("s1", "sg-thrown-1") + signal("s2", "sg-thrown-2")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "sg-listen-1.bpmn", catch_process("sg-listen-1", "sg-thrown-1"))
        deploy(stub, "sg-listen-2.bpmn", catch_process("sg-listen-2", "sg-thrown-2"))
        deploy(stub, "sg-thrower.bpmn", thrower)
        # several listeners so that both partitions hold some
        listeners = [create(stub, "sg-listen-1") for _ in range(3)] + [
            create(stub, "sg-listen-2") for _ in range(3)
        ]
        for key in listeners:
            wait_for(
                lambda key=key: pi_intents(data, key, "wait")[-1:] == ["ELEMENT_ACTIVATED"], 10, "listening"
            )
        assert {key >> 51 for key in listeners} == {1, 2}
        shouter = create(stub, "sg-thrower")
    wait_for(lambda: instance_state(data, shouter) == "ELEMENT_COMPLETED", 10, "thrower done")
    for key in listeners:
        wait_for(lambda key=key: instance_state(data, key) == "ELEMENT_COMPLETED", 10, "listener done")
    names = [r["value"]["signalName"] for r in events(data, valueType="SIGNAL", intent="BROADCASTED")]
    assert names.count("sg-thrown-1") == 2 and names.count("sg-thrown-2") == 2
    shout = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=shouter, elementId="shout")
    assert {r["value"]["bpmnEventType"] for r in shout} == {"SIGNAL"}


def test_signal_event_subprocess_non_interrupting(engine: EngineProcess, tmp_path: Path) -> None:
    body = (
        START
        + service_task("task", "sg-esp-work", "f0", "f1")
        + end_event("end", "f1")
        + flow("f0", "start", "task")
        + flow("f1", "task", "end")
        + '<bpmn:subProcess id="notify" triggeredByEvent="true">'
        + '<bpmn:startEvent id="notify-start" isInterrupting="false"><bpmn:outgoing>e0</bpmn:outgoing>'
        + definition("sig")
        + "</bpmn:startEvent>"
        + end_event("notify-end", "e0")
        + flow("e0", "notify-start", "notify-end")
        + "</bpmn:subProcess>"
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "sg-esp.bpmn", process_xml("sg-esp", body, signal("sig", "sg-esp-ping")))
        instance = create(stub, "sg-esp")
        wait_for(lambda: pi_intents(data, instance, "task")[-1:] == ["ELEMENT_ACTIVATED"], 10, "task active")

        async def run(client: ZeebeClient) -> None:
            await client.broadcast_signal("sg-esp-ping")

        pyzeebe_call(engine.address, run)
        wait_for(
            lambda: pi_intents(data, instance, "notify")[-1:] == ["ELEMENT_COMPLETED"], 10, "event subprocess"
        )
        assert pi_intents(data, instance, "task")[-1] == "ELEMENT_ACTIVATED"
        complete(stub, activate_one(stub, "sg-esp-work").key)
    wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 10, "instance done")


def test_a_signal_name_that_is_not_a_string_is_an_incident(engine: EngineProcess, tmp_path: Path) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "sg-bad.bpmn", catch_process("sg-bad", "=count"))
        instance = create(stub, "sg-bad", {"count": 3})
    wait_for(
        lambda: events(data, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance),
        10,
        "incident",
    )
    incident = events(data, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance)[0]["value"]
    assert incident["errorType"] == "EXTRACT_VALUE_ERROR"
    assert (
        incident["errorMessage"]
        == "Expected result of the expression 'count' to be 'STRING', but was 'NUMBER'."
    )
    assert not events(data, valueType="SIGNAL_SUBSCRIPTION", processInstanceKey=instance)


@pytest.mark.parametrize("stop", ["kill -9", "clean stop"])
def test_signal_subscriptions_survive_a_restart(tmp_path: Path, stop: str) -> None:
    """After kill -9 (the log is replayed) or a clean stop (the snapshot is loaded), the start
    event and the waiting catch event still listen, and a broadcast reaches both once."""
    data = tmp_path / "data"
    start_body = (
        start_event("go", "f0", definition=definition("sig"))
        + end_event("end", "f0")
        + flow("f0", "go", "end")
    )
    engine = EngineProcess(data, partitions=2).start()
    try:
        with gateway(engine.address) as stub:
            deploy(
                stub, "sg-r-start.bpmn", process_xml("sg-r-start", start_body, signal("sig", "sg-restart"))
            )
            deploy(stub, "sg-r-catch.bpmn", catch_process("sg-r-catch", "sg-restart"))
            waiting = [create(stub, "sg-r-catch") for _ in range(4)]
            for key in waiting:
                wait_for(
                    lambda key=key: pi_intents(data, key, "wait")[-1:] == ["ELEMENT_ACTIVATED"], 10, "waiting"
                )
    finally:
        if stop == "kill -9":
            engine.kill()
        else:
            engine.stop()
    restarted = EngineProcess(data, partitions=2).start()
    try:
        broadcast_result = pyzeebe_call(
            restarted.address, lambda client: client.broadcast_signal("sg-restart")
        )
        assert broadcast_result is not None
        for key in waiting:
            wait_for(lambda key=key: instance_state(data, key) == "ELEMENT_COMPLETED", 10, "catch completed")

        def started() -> int:
            return len(
                [
                    r
                    for r in events(
                        data,
                        valueType="PROCESS_INSTANCE",
                        bpmnProcessId="sg-r-start",
                        intent="ELEMENT_COMPLETED",
                    )
                    if r["value"]["bpmnElementType"] == "PROCESS"
                ]
            )

        wait_for(lambda: started() == 1, 10, "one signal-started instance")
    finally:
        restarted.stop()


def test_bad_broadcasts_are_refused_and_write_nothing(engine: EngineProcess) -> None:
    data = engine.data_dir
    before = len(events(data, valueType="SIGNAL"))
    with gateway(engine.address) as stub:
        for request, code, text in [
            (
                pb.BroadcastSignalRequest(signalName="sg-bad", variables="[1]"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "Property 'variables' is invalid",
            ),
            (
                pb.BroadcastSignalRequest(signalName="sg-bad", variables="{not json"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "Property 'variables' is invalid",
            ),
            (
                pb.BroadcastSignalRequest(signalName="sg-bad", tenantId="other-tenant"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "tenant",
            ),
        ]:
            with pytest.raises(grpc.RpcError) as raised:
                stub.BroadcastSignal(request, timeout=10)
            assert raised.value.code() == code, raised.value.details()
            assert text in raised.value.details(), raised.value.details()
        # the engine still answers, and nothing was broadcast
        assert stub.BroadcastSignal(pb.BroadcastSignalRequest(signalName="sg-fine"), timeout=10).key > 0
    assert len(events(data, valueType="SIGNAL")) == before + 2  # only sg-fine, on both partitions


def test_interrupting_signal_event_subprocess_ends_the_task(engine: EngineProcess, tmp_path: Path) -> None:
    body = (
        START
        + service_task("task", "sg-esp-int-work", "f0", "f1")
        + end_event("end", "f1")
        + flow("f0", "start", "task")
        + flow("f1", "task", "end")
        + '<bpmn:subProcess id="abort" triggeredByEvent="true">'
        + start_event("abort-start", "e0", definition=definition("sig"))
        + end_event("abort-end", "e0")
        + flow("e0", "abort-start", "abort-end")
        + "</bpmn:subProcess>"
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "sg-esp-int.bpmn", process_xml("sg-esp-int", body, signal("sig", "sg-esp-abort")))
        instance = create(stub, "sg-esp-int")
        wait_for(lambda: pi_intents(data, instance, "task")[-1:] == ["ELEMENT_ACTIVATED"], 10, "task active")

    async def run(client: ZeebeClient) -> None:
        await client.broadcast_signal("sg-esp-abort", {"why": "rack down"})

    pyzeebe_call(engine.address, run)
    wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 10, "instance completed")
    assert pi_intents(data, instance, "task")[-1] == "ELEMENT_TERMINATED"
    assert pi_intents(data, instance, "abort")[-1] == "ELEMENT_COMPLETED"
    assert not pi_intents(data, instance, "end")
    assert [r["intent"] for r in events(data, valueType="JOB", processInstanceKey=instance)] == [
        "CREATED",
        "CANCELED",
    ]
    assert variables_of(data, instance)["why"] == "rack down"
    # the process's subscription for the event subprocess was closed with the interruption
    process_subscriptions = events(data, valueType="SIGNAL_SUBSCRIPTION", catchEventInstanceKey=instance)
    assert [r["intent"] for r in process_subscriptions] == ["CREATED", "DELETED"]
