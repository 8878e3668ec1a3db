"""Message start events behind routing (routing/messages.py, RoutingCore.publish_message).

A process with a message start event is deployed to every cluster, so a fanned-out publish
would start one instance per cluster. These tests run two real engines behind the proxy (and the
in-process channel) and count instances in each engine's own log.
"""

# No "from __future__ import annotations": pyzeebe finds the Job parameter by its real annotation.
import asyncio
import time
from pathlib import Path

import pytest
from pyzeebe import ZeebeClient, create_insecure_channel
from pyzeebe.errors import MessageAlreadyExistsError

import routing
from routing.messages import start_message_names, start_messages_by_process
from tests.routing.conftest import Fleet
from tests.routing.harness import iter_values
from tests.routing.models import message_catch_process, message_start_process, service_task_process
from tests.support import wait_for

SETTLE_SECONDS = 1.5
"""How long to keep watching after the expected count is reached, so a late duplicate shows."""


# ----------------------------------------------------------------- parsing (no engines)


def test_start_message_names_literal_process_level_latest_version() -> None:
    start = message_start_process("p", "order-placed", "t")
    assert start_messages_by_process("p.bpmn", start) == {"p": frozenset({"order-placed"})}
    # FEEL names cannot be known to routing: not listed (fanned out as before).
    assert start_messages_by_process("q.bpmn", message_start_process("q", "=name", "t")) == {"q": frozenset()}
    # A catch event's message is not a start message.
    assert start_messages_by_process("c.bpmn", message_catch_process("c", "paid")) == {"c": frozenset()}
    # The latest deployment of a process id wins: a version without the start event removes it.
    assert start_message_names([("p.bpmn", start)]) == {"order-placed"}
    assert start_message_names([("p.bpmn", start), ("p2.bpmn", service_task_process("p", "t"))]) == set()
    assert start_message_names([("p.bpmn", start), ("x.dmn", b"<definitions/>")]) == {"order-placed"}


def test_start_message_names_hostile_resources_ignored() -> None:
    doctype = (
        b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        b'<bpmn:message id="m" name="&b;"/><bpmn:process id="p"><bpmn:startEvent id="s">'
        b'<bpmn:messageEventDefinition messageRef="m"/></bpmn:startEvent></bpmn:process></bpmn:definitions>'
    )
    assert start_messages_by_process("p.bpmn", doctype) == {}
    assert start_messages_by_process("p.bpmn", doctype.replace(b"DOCTYPE", b"doctype")) == {}
    assert start_messages_by_process("p.bpmn", b"<not xml") == {}
    assert start_messages_by_process("p.bpmn", b"\xff\xfe<\x00a\x00/\x00>\x00") == {}
    huge = message_start_process("p", "m", "t") + b" " * (4 * 1024 * 1024)
    assert start_messages_by_process("p.bpmn", huge) == {}


# ----------------------------------------------------------------- two engines


def _instances(fleet: Fleet, cluster_id: int, process_id: str) -> int:
    return sum(
        1
        for r in iter_values(fleet.engine(cluster_id).records(), "PROCESS_INSTANCE", "ELEMENT_ACTIVATED")
        if r["value"]["bpmnElementType"] == "PROCESS" and r["value"]["bpmnProcessId"] == process_id
    )


def _counts(fleet: Fleet, process_id: str) -> tuple[int, int]:
    return _instances(fleet, 1, process_id), _instances(fleet, 2, process_id)


def _settled_counts(fleet: Fleet, process_id: str, total: int) -> tuple[int, int]:
    wait_for(lambda: sum(_counts(fleet, process_id)) >= total, timeout=20)
    time.sleep(SETTLE_SECONDS)
    return _counts(fleet, process_id)


async def _deploy_async(client: ZeebeClient, tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    await client.deploy_resource(str(path))


@pytest.mark.parametrize("through", ["proxy", "channel"])
def test_start_message_starts_one_instance_per_publish(fleet: Fleet, tmp_path: Path, through: str) -> None:
    process_id = f"rt-msg-start-{through}"
    message = f"rt-order-{through}"

    async def drive() -> None:
        if through == "proxy":
            channel = create_insecure_channel(grpc_address=fleet.proxy.address)
        else:
            channel = routing.connect(clusters_file=fleet.proxy.clusters_file, state_dir=tmp_path / "ch")
        client = ZeebeClient(channel)
        try:
            await _deploy_async(
                client, tmp_path, "start.bpmn", message_start_process(process_id, message, "rt-hold")
            )
            for _ in range(6):  # no correlation key: placed
                await client.publish_message(message, correlation_key="", time_to_live_in_milliseconds=0)
            for i in range(6):
                await client.publish_message(message, correlation_key=f"k{i}", time_to_live_in_milliseconds=0)
        finally:
            await channel.close()

    asyncio.run(drive())
    c1, c2 = _settled_counts(fleet, process_id, 12)
    assert c1 + c2 == 12, (c1, c2)
    assert c1 > 0 and c2 > 0, f"placement and key hashing should use both clusters: {(c1, c2)}"


def test_same_correlation_key_while_active_starts_nothing_anywhere(fleet: Fleet, tmp_path: Path) -> None:
    process_id = "rt-msg-unique"
    message = "rt-unique"

    async def drive(publishes: list[str]) -> None:
        channel = create_insecure_channel(grpc_address=fleet.proxy.address)
        client = ZeebeClient(channel)
        try:
            if not publishes:
                await _deploy_async(
                    client, tmp_path, "u.bpmn", message_start_process(process_id, message, "rt-hold")
                )
            for key in publishes:
                await client.publish_message(message, correlation_key=key, time_to_live_in_milliseconds=0)
        finally:
            await channel.close()

    asyncio.run(drive([]))
    keys = [f"server-{i}" for i in range(8)]
    asyncio.run(drive(keys))
    first = _settled_counts(fleet, process_id, len(keys))
    assert sum(first) == len(keys), first
    # Every instance is still active (its job is never completed): the same keys again must not
    # start a second instance on either cluster.
    asyncio.run(drive(keys))
    time.sleep(SETTLE_SECONDS)
    assert _counts(fleet, process_id) == first


def test_catch_event_messages_still_reach_either_cluster(fleet: Fleet, tmp_path: Path) -> None:
    process_id = "rt-msg-catch"
    message = "rt-paid"
    instances = 8

    async def drive() -> None:
        channel = create_insecure_channel(grpc_address=fleet.proxy.address)
        client = ZeebeClient(channel)
        try:
            await _deploy_async(client, tmp_path, "c.bpmn", message_catch_process(process_id, message))
            for i in range(instances):
                await client.run_process(process_id, {"key": f"c{i}"})
            for i in range(instances):
                await client.publish_message(message, correlation_key=f"c{i}", time_to_live_in_milliseconds=0)
        finally:
            await channel.close()

    asyncio.run(drive())

    def completed(cluster_id: int) -> int:
        return sum(
            1
            for r in iter_values(fleet.engine(cluster_id).records(), "PROCESS_INSTANCE", "ELEMENT_COMPLETED")
            if r["value"]["bpmnElementType"] == "PROCESS" and r["value"]["bpmnProcessId"] == process_id
        )

    wait_for(lambda: completed(1) + completed(2) == instances, timeout=20)
    assert completed(1) > 0 and completed(2) > 0


def test_draining_cluster_gets_no_start_messages(fleet: Fleet, tmp_path: Path) -> None:
    process_id = "rt-msg-drain"
    message = "rt-drain"
    fleet.proxy.write_clusters(fleet.entries(c2={"state": "draining"}))
    time.sleep(2.5)  # the source is re-read within 2 s (routing/README.md)

    async def drive() -> None:
        channel = create_insecure_channel(grpc_address=fleet.proxy.address)
        client = ZeebeClient(channel)
        try:
            await _deploy_async(
                client, tmp_path, "d.bpmn", message_start_process(process_id, message, "rt-hold")
            )
            for i in range(6):
                await client.publish_message(message, correlation_key="", time_to_live_in_milliseconds=0)
                await client.publish_message(message, correlation_key=f"d{i}", time_to_live_in_milliseconds=0)
        finally:
            await channel.close()

    asyncio.run(drive())
    c1, c2 = _settled_counts(fleet, process_id, 12)
    assert (c1, c2) == (12, 0)


def test_retried_publish_with_a_message_id_meets_the_first_one(fleet: Fleet, tmp_path: Path) -> None:
    """Empty correlation key, same messageId: both publishes reach the same cluster, whose
    messageId uniqueness refuses the second (Zeebe's ALREADY_EXISTS) instead of a second
    instance on the other cluster."""
    process_id = "rt-msg-id"
    message = "rt-msg-id"
    ids = [f"publish-{i}" for i in range(6)]

    async def drive() -> list[str]:
        channel = create_insecure_channel(grpc_address=fleet.proxy.address)
        client = ZeebeClient(channel)
        refused = []
        try:
            await _deploy_async(
                client, tmp_path, "i.bpmn", message_start_process(process_id, message, "rt-hold")
            )
            for message_id in ids + ids:
                try:
                    await client.publish_message(
                        message,
                        correlation_key="",
                        message_id=message_id,
                        time_to_live_in_milliseconds=60_000,
                    )
                except MessageAlreadyExistsError:
                    refused.append(message_id)
        finally:
            await channel.close()
        return refused

    refused = asyncio.run(drive())
    assert refused == ids
    c1, c2 = _settled_counts(fleet, process_id, len(ids))
    assert c1 + c2 == len(ids), (c1, c2)
