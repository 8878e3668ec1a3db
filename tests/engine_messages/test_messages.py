"""Messages through real clients (pyzeebe, zbctl) against a real `python -m engine` with three
partitions (reference §1.3 PublishMessage, §2.3 correlation-key hashing, §3.5 records, §5.2).

Covered: zbctl `publish message` (output, ALREADY_EXISTS on a duplicate messageId), the
correlation-key hash (test vectors), intermediate catch events correlated across partitions
(records on the instance's and on the message's partition), receive tasks with an interrupting
message boundary, a non-interrupting boundary that leaves the task active and fires twice,
message start events (one active instance per correlation key), a message buffered before the
subscription opens, TTL expiry, the correlation key incident, and a buffered message that
survives kill -9.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe import ZeebeClient
from pyzeebe.proto import gateway_pb2 as pb

from engine.bpmn.support import NOT_YET_SUPPORTED
from engine.processing.message_state import correlation_key_hash, subscription_partition_id
from engine.records import decode_partition
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
    intents,
    process_xml,
    pyzeebe_call,
    service_task,
    wait_for,
    write_file,
)
from tests.support.bpmn import START, boundary_event, catch_event, end_event, start_event
from tests.zbctl import require_zbctl, run_zbctl


def message(message_id: str, name: str, correlation_key: str | None = "= orderId") -> str:
    subscription = (
        ""
        if correlation_key is None
        else f'<bpmn:extensionElements><zeebe:subscription correlationKey="{correlation_key}"/></bpmn:extensionElements>'
    )
    return f'<bpmn:message id="{message_id}" name="{name}">{subscription}</bpmn:message>'


def message_definition(message_ref: str) -> str:
    return f'<bpmn:messageEventDefinition messageRef="{message_ref}"/>'


def catch_process(process_id: str, name: str) -> bytes:
    body = (
        START
        + catch_event("wait", "f0", "f1", message_definition("m1"))
        + end_event("done", "f1")
        + flow("f0", "start", "wait")
        + flow("f1", "wait", "done")
    )
    return process_xml(process_id, body, extra=message("m1", name))


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """Three partitions: correlation keys spread over them (reference §2.3)."""
    data_dir = tmp_path_factory.mktemp("messages") / "data"
    process = EngineProcess(data_dir, partitions=3).start()
    try:
        yield process
    finally:
        process.stop()


def publish(
    stub: Any,
    name: str,
    correlation_key: str,
    variables: dict[str, Any] | None = None,
    ttl: int = 0,
    message_id: str = "",
) -> int:
    response = stub.PublishMessage(
        pb.PublishMessageRequest(
            name=name,
            correlationKey=correlation_key,
            timeToLive=ttl,
            messageId=message_id,
            variables=json.dumps(variables or {}),
        ),
        timeout=10,
    )
    return int(response.key)


def root_variables(data_dir: Path, instance: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for record in events(data_dir, valueType="VARIABLE", scopeKey=instance):
        found[record["value"]["name"]] = json.loads(record["value"]["value"])
    return found


# ---------------------------------------------------------------------- hashing
def test_correlation_key_hash_matches_the_reference_vectors() -> None:
    assert correlation_key_hash("a") == 97
    assert correlation_key_hash("order-123") == -392797389
    assert subscription_partition_id("a", 3) == 2
    assert subscription_partition_id("order-123", 3) == 1
    # non-ASCII bytes count as signed bytes (Java's byte)
    assert correlation_key_hash("é") == 31 * (0xC3 - 256) + (0xA9 - 256)


# ---------------------------------------------------------------------- zbctl
def test_zbctl_publish_message_and_duplicate_message_id(engine: EngineProcess, tmp_path: Path) -> None:
    require_zbctl()
    address = engine.address
    published = run_zbctl(
        address,
        "publish",
        "message",
        "zb-msg",
        "--correlationKey",
        "zb-1",
        "--messageId",
        "id-1",
        "--ttl",
        "1m",
        "--variables",
        '{"a": 1}',
    )
    assert published.returncode == 0, published.stderr
    output = json.loads(published.stdout)
    assert set(output) == {"key", "tenantId"} and output["tenantId"] == "<default>"
    key = int(output["key"])
    assert decode_partition(key) == subscription_partition_id("zb-1", 3)
    duplicate = run_zbctl(
        address,
        "publish",
        "message",
        "zb-msg",
        "--correlationKey",
        "zb-1",
        "--messageId",
        "id-1",
        "--ttl",
        "1m",
    )
    assert duplicate.returncode != 0
    assert "ALREADY_EXISTS" in duplicate.stderr
    assert (
        "Expected to publish a new message with id 'id-1', but a message with that id was already published"
        in duplicate.stderr
    )
    # another correlation key with the same id is another message
    other = run_zbctl(
        address,
        "publish",
        "message",
        "zb-msg",
        "--correlationKey",
        "zb-2",
        "--messageId",
        "id-1",
        "--ttl",
        "1m",
    )
    assert other.returncode == 0, other.stderr
    published_records = events(engine.data_dir, valueType="MESSAGE", intent="PUBLISHED", key=key)
    assert published_records[0]["value"]["variables"] == {"a": 1}
    assert published_records[0]["value"]["timeToLive"] == 60_000


def test_publish_rejects_variables_that_are_not_an_object(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        with pytest.raises(grpc.RpcError) as error:
            stub.PublishMessage(
                pb.PublishMessageRequest(name="bad-vars", correlationKey="k", variables="[1, 2]"), timeout=10
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as error:
            stub.PublishMessage(
                pb.PublishMessageRequest(name="bad-vars", correlationKey="k", variables="{"), timeout=10
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------------- catch events
def test_catch_events_correlate_across_partitions(engine: EngineProcess) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "msg-catch.bpmn", catch_process("msg-catch", "order-paid"))
        keys = [f"order-{n}" for n in range(6)]
        instances = {key: create(stub, "msg-catch", {"orderId": key}) for key in keys}
        for instance in instances.values():
            wait_for(
                lambda i=instance: (
                    intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=i)
                    == ["CREATING", "CREATED"]
                ),
                10,
                "subscription opened",
            )
        for key in keys:
            publish(stub, "order-paid", key, {"paid": key})
    for key, instance in instances.items():
        wait_for(
            lambda i=instance: instance_state(data, i) == "ELEMENT_COMPLETED",
            10,
            f"instance of {key} completed",
        )
        assert root_variables(data, instance)["paid"] == key
        subscription = events(data, valueType="MESSAGE_SUBSCRIPTION", processInstanceKey=instance)
        assert [r["intent"] for r in subscription] == ["CREATED", "CORRELATING", "CORRELATED"]
        message_partition = subscription_partition_id(key, 3)
        assert {r["partitionId"] for r in subscription} == {message_partition}
        process_side = events(data, valueType="PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance)
        assert [r["intent"] for r in process_side] == ["CREATING", "CREATED", "CORRELATED"]
        assert {r["partitionId"] for r in process_side} == {decode_partition(instance)}
    partitions = {subscription_partition_id(key, 3) for key in keys} | {
        decode_partition(i) for i in instances.values()
    }
    assert len(partitions) > 1  # the hash really spread the keys


def test_message_is_correlated_once_per_process(engine: EngineProcess) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "msg-once.bpmn", catch_process("msg-once", "once"))
        first = create(stub, "msg-once", {"orderId": "same"})
        second = create(stub, "msg-once", {"orderId": "same"})
        for instance in (first, second):
            wait_for(
                lambda i=instance: (
                    "CREATED" in intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=i)
                ),
                10,
            )
        publish(stub, "once", "same", ttl=60_000)
        wait_for(lambda: intents(data, "MESSAGE_SUBSCRIPTION", intent="CORRELATED", messageName="once"), 10)
        # only one of the two took it; the other waits for the next message
        states = sorted(str(instance_state(data, i)) for i in (first, second))
        assert states == ["ELEMENT_ACTIVATED", "ELEMENT_COMPLETED"]
        publish(stub, "once", "same")
    for instance in (first, second):
        wait_for(lambda i=instance: instance_state(data, i) == "ELEMENT_COMPLETED", 10)


def test_buffered_message_correlates_when_the_subscription_opens_fifo(engine: EngineProcess) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "msg-buffer.bpmn", catch_process("msg-buffer", "early"))
        publish(stub, "early", "buf-1", {"n": 1}, ttl=60_000)
        publish(stub, "early", "buf-1", {"n": 2}, ttl=60_000)
        first = create(stub, "msg-buffer", {"orderId": "buf-1"})
        wait_for(lambda: instance_state(data, first) == "ELEMENT_COMPLETED", 10, "first instance")
        second = create(stub, "msg-buffer", {"orderId": "buf-1"})
        wait_for(lambda: instance_state(data, second) == "ELEMENT_COMPLETED", 10, "second instance")
    # FIFO: the oldest buffered message first
    assert root_variables(data, first)["n"] == 1
    assert root_variables(data, second)["n"] == 2


def test_ttl_expiry(engine: EngineProcess) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "msg-ttl.bpmn", catch_process("msg-ttl", "short"))
        key = publish(stub, "short", "ttl-1", ttl=300)
        wait_for(lambda: intents(data, "MESSAGE", key=key) == ["PUBLISHED", "EXPIRED"], 10, "message expired")
        expired = events(data, valueType="MESSAGE", intent="EXPIRED", key=key)[0]
        published = events(data, valueType="MESSAGE", intent="PUBLISHED", key=key)[0]
        assert expired["timestamp"] >= published["value"]["deadline"]
        instance = create(stub, "msg-ttl", {"orderId": "ttl-1"})
        wait_for(
            lambda: "CREATED" in intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance),
            10,
        )
        assert instance_state(data, instance) == "ELEMENT_ACTIVATED"  # the expired message is gone
        # a zero TTL message is not buffered at all
        zero = publish(stub, "short", "ttl-0")
        assert intents(data, "MESSAGE", key=zero) == ["PUBLISHED", "EXPIRED"]


def test_correlation_key_that_is_not_a_string_or_number_is_an_incident(engine: EngineProcess) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "msg-badkey.bpmn", catch_process("msg-badkey", "badkey"))
        instance = create(stub, "msg-badkey", {"orderId": True})
        wait_for(
            lambda: events(data, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance), 10
        )
        incident = events(data, valueType="INCIDENT", intent="CREATED", processInstanceKey=instance)[0]
        assert incident["value"]["errorType"] == "EXTRACT_VALUE_ERROR"
        assert incident["value"]["errorMessage"] == (
            "Failed to extract the correlation key for 'orderId': The value must be either a string or a number, "
            "but was 'BOOLEAN'."
        )
        assert not events(data, valueType="PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance)
        # fixed and resolved: the subscription opens, and a number works as a key
        stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=instance, variables='{"orderId": 42}'), timeout=10
        )
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]), timeout=10)
        wait_for(
            lambda: "CREATED" in intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance),
            10,
        )
        publish(stub, "badkey", "42")
    wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 10)


# ---------------------------------------------------------------------- receive task, boundaries
def test_receive_task_with_interrupting_message_boundary(engine: EngineProcess) -> None:
    body = (
        START + '<bpmn:receiveTask id="receive" messageRef="m1"><bpmn:incoming>f0</bpmn:incoming>'
        "<bpmn:outgoing>f1</bpmn:outgoing></bpmn:receiveTask>"
        + boundary_event("cancelled", "receive", "f2", message_definition("m2"))
        + end_event("received", "f1")
        + end_event("aborted", "f2")
        + flow("f0", "start", "receive")
        + flow("f1", "receive", "received")
        + flow("f2", "cancelled", "aborted")
    )
    xml = process_xml("msg-receive", body, extra=message("m1", "receive-me") + message("m2", "abort-me"))
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "msg-receive.bpmn", xml)
        received = create(stub, "msg-receive", {"orderId": "rt-1"})
        aborted = create(stub, "msg-receive", {"orderId": "rt-2"})
        for instance in (received, aborted):
            wait_for(
                lambda i=instance: (
                    intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=i, intent="CREATED")
                    == ["CREATED", "CREATED"]
                ),
                10,
            )
        publish(stub, "receive-me", "rt-1", {"got": "it"})
        publish(stub, "abort-me", "rt-2")
    for instance in (received, aborted):
        wait_for(lambda i=instance: instance_state(data, i) == "ELEMENT_COMPLETED", 10)
    assert (
        intents(data, "PROCESS_INSTANCE", processInstanceKey=received, elementId="received")[-1]
        == "ELEMENT_COMPLETED"
    )
    assert root_variables(data, received)["got"] == "it"
    assert (
        intents(data, "PROCESS_INSTANCE", processInstanceKey=aborted, elementId="receive")[-1]
        == "ELEMENT_TERMINATED"
    )
    assert (
        intents(data, "PROCESS_INSTANCE", processInstanceKey=aborted, elementId="aborted")[-1]
        == "ELEMENT_COMPLETED"
    )
    # the receive task's own subscription was closed on both sides when it was interrupted
    assert intents(
        data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=aborted, messageName="receive-me"
    ) == [
        "CREATING",
        "CREATED",
        "DELETING",
        "DELETED",
    ]
    assert intents(data, "MESSAGE_SUBSCRIPTION", processInstanceKey=aborted, messageName="receive-me") == [
        "CREATED",
        "DELETED",
    ]


def test_non_interrupting_boundary_leaves_the_task_active(engine: EngineProcess, tmp_path: Path) -> None:
    body = (
        START
        + service_task("task", "msg-slow", "f0", "f1")
        + boundary_event("nudge", "task", "f2", message_definition("m1"), interrupting=False)
        + end_event("done", "f1")
        + end_event("nudged", "f2")
        + flow("f0", "start", "task")
        + flow("f1", "task", "done")
        + flow("f2", "nudge", "nudged")
    )
    path = write_file(
        tmp_path, "msg-nudge.bpmn", process_xml("msg-nudge", body, extra=message("m1", "nudge"))
    )
    data = engine.data_dir

    async def run(client: ZeebeClient) -> int:
        await client.deploy_resource(str(path))
        created = await client.run_process("msg-nudge", {"orderId": "nudge-1"})
        instance = int(created.process_instance_key)
        for _ in range(100):
            if "CREATED" in intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance):
                break
            await asyncio.sleep(0.1)
        await client.publish_message("nudge", "nudge-1", {"count": 1})
        for _ in range(100):
            if (
                len(
                    intents(
                        data,
                        "PROCESS_INSTANCE",
                        processInstanceKey=instance,
                        elementId="nudged",
                        intent="ELEMENT_COMPLETED",
                    )
                )
                == 1
            ):
                break
            await asyncio.sleep(0.1)
        await client.publish_message("nudge", "nudge-1", {"count": 2})
        return instance

    instance = pyzeebe_call(engine.address, run)
    wait_for(
        lambda: (
            len(
                intents(
                    data,
                    "PROCESS_INSTANCE",
                    processInstanceKey=instance,
                    elementId="nudged",
                    intent="ELEMENT_COMPLETED",
                )
            )
            == 2
        ),
        10,
        "boundary fired twice",
    )
    task = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="task")
    assert task[-1]["intent"] == "ELEMENT_ACTIVATED"  # still active, its job too
    assert instance_state(data, instance) == "ELEMENT_ACTIVATED"
    with gateway(engine.address) as stub:
        job = activate_one(stub, "msg-slow")
        complete(stub, job.key)
    wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 10)
    assert intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance) == [
        "CREATING",
        "CREATED",
        "CORRELATED",
        "CORRELATED",
        "DELETING",
        "DELETED",
    ]


# ---------------------------------------------------------------------- start events
def test_message_start_event_one_active_instance_per_correlation_key(engine: EngineProcess) -> None:
    body = (
        start_event(definition=message_definition("m1"))
        + service_task("task", "msg-started", "f0", "f1")
        + end_event("done", "f1")
        + flow("f0", "start", "task")
        + flow("f1", "task", "done")
    )
    xml = process_xml("msg-start", body, extra=message("m1", "start-it", correlation_key=None))
    data = engine.data_dir

    def started() -> list[dict[str, Any]]:
        return events(
            data, valueType="MESSAGE_START_EVENT_SUBSCRIPTION", intent="CORRELATED", bpmnProcessId="msg-start"
        )

    with gateway(engine.address) as stub:
        deployed = deploy(stub, "msg-start.bpmn", xml)
        definition_key = deployed.deployments[0].process.processDefinitionKey
        created = events(
            data,
            valueType="MESSAGE_START_EVENT_SUBSCRIPTION",
            intent="CREATED",
            processDefinitionKey=definition_key,
        )
        assert sorted(r["partitionId"] for r in created) == [1, 2, 3]  # every partition listens
        publish(stub, "start-it", "ck-1", {"first": True}, ttl=60_000)
        wait_for(lambda: len(started()) == 1, 10, "first instance")
        # same correlation key while that instance is active: buffered, no second instance
        publish(stub, "start-it", "ck-1", {"second": True}, ttl=60_000)
        # an empty correlation key always starts one
        publish(stub, "start-it", "", {"empty": 1})
        publish(stub, "start-it", "", {"empty": 2})
        wait_for(lambda: len(started()) == 3, 10, "instances for the empty key")
        assert [r["value"]["correlationKey"] for r in started()].count("ck-1") == 1
        first = started()[0]["value"]["processInstanceKey"]
        assert root_variables(data, first) == {"first": True}
        job = activate_one(stub, "msg-started", fetch=["first"])
        while json.loads(job.variables) != {"first": True}:
            complete(stub, job.key)
            job = activate_one(stub, "msg-started", fetch=["first"])
        complete(stub, job.key)
        wait_for(lambda: instance_state(data, first) == "ELEMENT_COMPLETED", 10)
        # the first one ended: the buffered message starts the next instance for ck-1
        wait_for(
            lambda: [r["value"]["correlationKey"] for r in started()].count("ck-1") == 2,
            10,
            "next ck-1 instance",
        )
        second = [r for r in started() if r["value"]["correlationKey"] == "ck-1"][-1]["value"][
            "processInstanceKey"
        ]
        assert root_variables(data, second) == {"second": True}
        # a new version replaces the old version's subscriptions
        redeployed = deploy(
            stub,
            "msg-start.bpmn",
            xml.replace(b'id="done"', b'id="finished"').replace(b'"done"', b'"finished"'),
        )
        assert redeployed.deployments[0].process.version == 2
        deleted = events(
            data,
            valueType="MESSAGE_START_EVENT_SUBSCRIPTION",
            intent="DELETED",
            processDefinitionKey=definition_key,
        )
        assert sorted(r["partitionId"] for r in deleted) == [1, 2, 3]
        publish(stub, "start-it", "")
        wait_for(
            lambda: (
                started()[-1]["value"]["processDefinitionKey"]
                == redeployed.deployments[0].process.processDefinitionKey
            ),
            10,
        )


# ---------------------------------------------------------------------- durability
def test_buffered_message_survives_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = EngineProcess(data, partitions=3).start()
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "msg-durable.bpmn", catch_process("msg-durable", "durable"))
            waiting = create(stub, "msg-durable", {"orderId": "before-kill"})
            wait_for(
                lambda: (
                    "CREATED" in intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=waiting)
                ),
                10,
            )
            publish(stub, "durable", "kept", {"survived": True}, ttl=600_000)
        engine.kill()
        engine = EngineProcess(data, partitions=3, port=engine.port).start()
        with gateway(engine.address) as stub:
            instance = create(stub, "msg-durable", {"orderId": "kept"})
            wait_for(
                lambda: instance_state(data, instance) == "ELEMENT_COMPLETED",
                15,
                "buffered message correlated",
            )
            assert root_variables(data, instance)["survived"] is True
            # the subscription opened before the kill still correlates
            publish(stub, "durable", "before-kill")
            wait_for(lambda: instance_state(data, waiting) == "ELEMENT_COMPLETED", 15)
    finally:
        engine.stop()


# ---------------------------------------------------------------------- event sub-processes
def message_event_sub_process(sub_id: str, message_ref: str, interrupting: bool) -> str:
    attribute = "" if interrupting else ' isInterrupting="false"'
    return (
        f'<bpmn:subProcess id="{sub_id}" triggeredByEvent="true">'
        f'<bpmn:startEvent id="{sub_id}-start"{attribute}><bpmn:outgoing>{sub_id}-f1</bpmn:outgoing>'
        f'<bpmn:messageEventDefinition messageRef="{message_ref}"/></bpmn:startEvent>'
        + end_event(f"{sub_id}-end", f"{sub_id}-f1")
        + flow(f"{sub_id}-f1", f"{sub_id}-start", f"{sub_id}-end")
        + "</bpmn:subProcess>"
    )


@pytest.mark.skipif(
    "message-event-sub-process" in NOT_YET_SUPPORTED,
    reason="event sub-processes (ENGINE-CORE) are not let through the deployment gate yet",
)
def test_message_event_sub_processes_interrupting_and_not(engine: EngineProcess) -> None:
    body = (
        START
        + service_task("task", "msg-esp", "f0", "f1")
        + end_event("done", "f1")
        + flow("f0", "start", "task")
        + flow("f1", "task", "done")
        + message_event_sub_process("notify", "m1", interrupting=False)
        + message_event_sub_process("abort", "m2", interrupting=True)
    )
    xml = process_xml("msg-esp", body, extra=message("m1", "esp-notify") + message("m2", "esp-abort"))
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "msg-esp.bpmn", xml)
        instance = create(stub, "msg-esp", {"orderId": "esp-1"})
        wait_for(
            lambda: (
                intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance, intent="CREATED")
                == ["CREATED", "CREATED"]
            ),
            10,
            "both event sub-process subscriptions",
        )
        publish(stub, "esp-notify", "esp-1", {"notified": 1})
        wait_for(
            lambda: (
                intents(data, "PROCESS_INSTANCE", processInstanceKey=instance, elementId="notify")[-1:]
                == ["ELEMENT_COMPLETED"]
            ),
            10,
            "non-interrupting event sub-process ran",
        )
        task = intents(data, "PROCESS_INSTANCE", processInstanceKey=instance, elementId="task")
        assert task[-1] == "ELEMENT_ACTIVATED"  # the process went on
        publish(stub, "esp-abort", "esp-1")
        wait_for(
            lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 10, "interrupted process ended"
        )
    assert (
        intents(data, "PROCESS_INSTANCE", processInstanceKey=instance, elementId="task")[-1]
        == "ELEMENT_TERMINATED"
    )
    assert intents(data, "JOB", processInstanceKey=instance) == ["CREATED", "CANCELED"]
    assert (
        intents(data, "PROCESS_INSTANCE", processInstanceKey=instance, elementId="abort")[-1]
        == "ELEMENT_COMPLETED"
    )
    assert root_variables(data, instance)["notified"] == 1
    # the non-interrupting subscription was closed with its scope, on both sides
    assert intents(
        data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=instance, messageName="esp-notify"
    )[-2:] == [
        "DELETING",
        "DELETED",
    ]
    assert (
        intents(data, "MESSAGE_SUBSCRIPTION", processInstanceKey=instance, messageName="esp-notify")[-1]
        == "DELETED"
    )


def test_buffered_message_and_subscription_restored_from_a_snapshot(tmp_path: Path) -> None:
    """A clean stop writes snapshots: buffered messages, subscriptions on both partitions and
    start-event subscriptions come back from them (not from replaying the log)."""
    data = tmp_path / "data"
    engine = EngineProcess(data, partitions=3).start()
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "msg-snap.bpmn", catch_process("msg-snap", "snap"))
            waiting = create(stub, "msg-snap", {"orderId": "snap-wait"})
            wait_for(
                lambda: (
                    "CREATED" in intents(data, "PROCESS_MESSAGE_SUBSCRIPTION", processInstanceKey=waiting)
                ),
                10,
            )
            publish(stub, "snap", "snap-buffered", {"from": "snapshot"}, ttl=600_000)
        assert engine.stop() == 0
        snapshots = [json.loads(p.read_text()) for p in sorted(data.glob("**/snapshot.json"))]
        assert any(s.get("messages") for s in snapshots)
        assert any(s.get("messageSubscriptions") for s in snapshots)
        assert any(s.get("processMessageSubscriptions") for s in snapshots)
        engine = EngineProcess(data, partitions=3, port=engine.port).start()
        assert engine.stderr().count(", 0 records replayed") == 3  # all three from their snapshots
        with gateway(engine.address) as stub:
            instance = create(stub, "msg-snap", {"orderId": "snap-buffered"})
            wait_for(
                lambda: instance_state(data, instance) == "ELEMENT_COMPLETED",
                15,
                "buffered message correlated",
            )
            assert root_variables(data, instance)["from"] == "snapshot"
            publish(stub, "snap", "snap-wait")
            wait_for(lambda: instance_state(data, waiting) == "ELEMENT_COMPLETED", 15)
    finally:
        engine.stop()
