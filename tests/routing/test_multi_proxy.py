"""Two ``python -m routing`` processes in front of the same two engines behave as one (issue 16).

Both proxies read the same cluster file and share one deployment journal (``--journal``); workers
poll through both. Checked against the engines' own logs:

* a deployment made through proxy A is visible to creates through proxy B at once, and both
  place over both clusters;
* jobs are delivered once whichever proxy activated them, and a job activated through one proxy
  can be completed through the other (keys are global, routing is stateless);
* deployments made through A and B while cluster 2 is down reach it when it returns, in the
  order they were made, each once, even though both proxies' catch-up loops race for it, and
  even when the proxy that accepted one of them is gone by then. (With one journal per proxy,
  the second would never arrive, and replays from two proxies could interleave: Zeebe dedups a
  redeployment only against the latest version, so an older one replayed after a newer one
  becomes a new version with old content.)
"""

# No "from __future__ import annotations": pyzeebe finds the Job parameter by its real annotation.
import asyncio
import base64
import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe import Job, ZeebeClient, ZeebeWorker, create_insecure_channel
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from routing.activation import is_hand_back
from routing.keys import cluster_of, from_global
from tests.routing.harness import EngineProcess, ProxyProcess, cluster_entry, iter_values
from tests.routing.models import service_task_process
from tests.support import wait_for


class TwoProxies:
    def __init__(self, base: Path) -> None:
        self.engines = [EngineProcess(data_dir=base / f"cluster{i}" / "data") for i in (1, 2)]
        self.clusters_file = base / "clusters.json"
        self.journal = base / "shared" / "deployments.json"
        self.proxies = [
            ProxyProcess(work_dir=base / name, clusters_file=self.clusters_file, journal=self.journal)
            for name in ("proxy-a", "proxy-b")
        ]

    def start(self) -> None:
        for engine in self.engines:
            engine.start()
        entries = [cluster_entry(i + 1, engine) for i, engine in enumerate(self.engines)]
        self.proxies[0].write_clusters(entries)
        for proxy in self.proxies:
            proxy.start()

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        for engine in self.engines:
            engine.stop()


@pytest.fixture
def two_proxies(tmp_path: Path) -> Iterator[TwoProxies]:
    fleet = TwoProxies(tmp_path)
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


def _deploy(address: str, name: str, content: bytes) -> pb.DeployResourceResponse:
    with grpc.insecure_channel(address) as channel:
        return gateway_pb2_grpc.GatewayStub(channel).DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]), timeout=30
        )


def _create(address: str, process_id: str, count: int) -> list[pb.CreateProcessInstanceResponse]:
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        return [
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId=process_id, version=-1), timeout=10
            )
            for _ in range(count)
        ]


def _versions(engine: EngineProcess, process_id: str) -> list[tuple[int, str]]:
    """(version, checksum) of every definition of ``process_id`` the engine created, by version
    (each partition records the definitions the deployment distributed to it: counted once)."""
    return sorted(
        {
            (r["value"]["version"], r["value"]["checksum"])
            for r in iter_values(engine.records(), "PROCESS", "CREATED")
            if r["value"]["bpmnProcessId"] == process_id
        }
    )


def _checksum(content: bytes) -> str:
    return base64.b64encode(hashlib.md5(content, usedforsecurity=False).digest()).decode("ascii")


def test_deploy_through_one_proxy_create_and_work_through_both(
    two_proxies: TwoProxies, tmp_path: Path
) -> None:
    proxy_a, proxy_b = two_proxies.proxies
    _deploy(proxy_a.address, "mp-work.bpmn", service_task_process("mp-work", "mp-work"))
    # Visible to B at once: every create through B succeeds, and B places over both clusters.
    created = _create(proxy_b.address, "mp-work", 40) + _create(proxy_a.address, "mp-work", 40)
    instance_keys = [int(c.processInstanceKey) for c in created]
    assert {cluster_of(k) for k in instance_keys[:40]} == {1, 2}
    assert {cluster_of(k) for k in instance_keys[40:]} == {1, 2}
    invocations: Counter[int] = Counter()

    async def work_through_both() -> None:
        channels = [create_insecure_channel(grpc_address=p.address) for p in (proxy_a, proxy_b)]
        workers = [ZeebeWorker(channel, name="mp-worker", request_timeout=1000) for channel in channels]
        for worker in workers:

            @worker.task(task_type="mp-work", timeout_ms=60_000, max_jobs_to_activate=8)
            async def work(job: Job) -> dict[str, Any]:
                invocations[job.process_instance_key] += 1
                return {}

        tasks = [asyncio.ensure_future(worker.work()) for worker in workers]
        try:
            for _ in range(600):  # bounded: 60 s
                if sum(invocations.values()) >= len(instance_keys):
                    break
                await asyncio.sleep(0.1)
        finally:
            for worker in workers:
                await worker.stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=15)
            for channel in channels:
                await channel.close()

    asyncio.run(work_through_both())
    assert sorted(invocations) == sorted(instance_keys)
    assert set(invocations.values()) == {1}  # each job delivered once across both proxies
    for cluster_id in (1, 2):
        engine = two_proxies.engines[cluster_id - 1]
        completed = {
            r["key"]
            for r in iter_values(engine.records(), "PROCESS_INSTANCE", "ELEMENT_COMPLETED")
            if r["value"]["bpmnElementType"] == "PROCESS"
        }
        assert {from_global(k)[1] for k in instance_keys if cluster_of(k) == cluster_id} <= completed
        failed = list(iter_values(engine.records(), "JOB", "FAILED"))
        assert all(is_hand_back(r["value"]["errorMessage"]) for r in failed)  # the workers never fail

    # A job activated through A is completed through B.
    (instance,) = _create(proxy_a.address, "mp-work", 1)
    with (
        grpc.insecure_channel(proxy_a.address) as channel_a,
        grpc.insecure_channel(proxy_b.address) as channel_b,
    ):
        stub_a, stub_b = gateway_pb2_grpc.GatewayStub(channel_a), gateway_pb2_grpc.GatewayStub(channel_b)
        jobs: list[pb.ActivatedJob] = []
        for _ in range(10):
            for response in stub_a.ActivateJobs(
                pb.ActivateJobsRequest(
                    type="mp-work", worker="cross", timeout=60_000, maxJobsToActivate=1, requestTimeout=1000
                ),
                timeout=10,
            ):
                jobs.extend(response.jobs)
            if jobs:
                break
        assert [j.processInstanceKey for j in jobs] == [instance.processInstanceKey]
        stub_b.CompleteJob(pb.CompleteJobRequest(jobKey=jobs[0].key), timeout=10)
    cluster_id, local_instance = from_global(instance.processInstanceKey)
    completed = {
        r["key"]
        for r in iter_values(
            two_proxies.engines[cluster_id - 1].records(), "PROCESS_INSTANCE", "ELEMENT_COMPLETED"
        )
    }
    assert local_instance in completed


def test_deployments_missed_while_down_replayed_once_in_order_by_either_proxy(
    two_proxies: TwoProxies,
) -> None:
    proxy_a, proxy_b = two_proxies.proxies
    engine_two = two_proxies.engines[1]
    v1 = service_task_process("mp-order", "mp-order", version_tag="v1")
    v2 = service_task_process("mp-order", "mp-order", version_tag="v2")
    v3 = service_task_process("mp-order", "mp-order", version_tag="v3")
    other = service_task_process("mp-other", "mp-order")
    _deploy(proxy_a.address, "mp-order.bpmn", v1)
    assert _versions(engine_two, "mp-order") == [(1, _checksum(v1))]

    engine_two.kill9()
    for proxy in (proxy_a, proxy_b):
        wait_for(lambda p=proxy: p.metrics()["clusters"]["2"]["health"] == "down", 10, what="cluster 2 down")
    _deploy(proxy_a.address, "mp-order.bpmn", v2)  # through A
    _deploy(proxy_b.address, "mp-order.bpmn", v3)  # then through B: the newer version
    _deploy(proxy_a.address, "mp-other.bpmn", other)
    for proxy in (proxy_a, proxy_b):  # one journal: each proxy knows what cluster 2 lacks
        wait_for(
            lambda p=proxy: p.metrics()["clusters"]["2"]["pendingDeployments"] == 3,
            5,
            what="three deployments pending for cluster 2 in both proxies",
        )
    # The proxy that accepted the last one is gone before cluster 2 returns: B must deliver it.
    assert proxy_a.stop() == 0

    engine_two.start()
    wait_for(
        lambda: (
            proxy_b.metrics()["clusters"]["2"]["pendingDeployments"] == 0
            and proxy_b.metrics()["clusters"]["2"]["health"] == "up"
        ),
        20,
        what="cluster 2 back with its missed deployments",
    )
    proxy_a.start()  # back, sharing the journal: it finds nothing left to replay
    wait_for(
        lambda: proxy_a.metrics()["clusters"]["2"]["pendingDeployments"] == 0,
        20,
        what="proxy A sees cluster 2 in sync",
    )
    # In order, each once: no version 4 made of an older content replayed after v3.
    assert _versions(engine_two, "mp-order") == [(1, _checksum(v1)), (2, _checksum(v2)), (3, _checksum(v3))]
    assert _versions(engine_two, "mp-other") == [(1, _checksum(other))]
    assert _versions(two_proxies.engines[0], "mp-order") == _versions(engine_two, "mp-order")

    # Placement through either proxy uses cluster 2 again, at the latest version there too.
    created = _create(proxy_a.address, "mp-order", 6) + _create(proxy_b.address, "mp-order", 6)
    assert {cluster_of(c.processInstanceKey) for c in created} == {1, 2}
    assert {c.version for c in created} == {3}


def test_simultaneous_deploys_through_both_proxies_line_up_on_every_cluster(two_proxies: TwoProxies) -> None:
    """Deploys racing through A and B (same process, different content): each cluster gets them
    in one order, the journal's, so the latest version is the same everywhere."""
    proxy_a, proxy_b = two_proxies.proxies
    contents = [service_task_process("mp-race", "mp-race", version_tag=f"r{i}") for i in range(8)]

    async def race() -> None:
        channels = [grpc.aio.insecure_channel(p.address) for p in (proxy_a, proxy_b)]
        try:
            stubs = [gateway_pb2_grpc.GatewayStub(c) for c in channels]
            await asyncio.gather(
                *(
                    stubs[i % 2].DeployResource(
                        pb.DeployResourceRequest(
                            resources=[pb.Resource(name="mp-race.bpmn", content=content)]
                        ),
                        timeout=30,
                    )
                    for i, content in enumerate(contents)
                )
            )
        finally:
            for channel in channels:
                await channel.close()

    asyncio.run(race())
    one, two = (_versions(engine, "mp-race") for engine in two_proxies.engines)
    assert [v for v, _ in one] == list(range(1, len(contents) + 1))
    assert one == two  # same content at every version on both clusters
    assert {checksum for _, checksum in one} == {_checksum(c) for c in contents}


def test_a_channel_sharing_the_journal_is_one_more_proxy(two_proxies: TwoProxies) -> None:
    """A routing channel given the proxies' cluster file and journal: what it deploys while a
    cluster is down is replayed by a proxy after the channel has gone, and the channel sees the
    proxies' deployments in its placement at once."""
    import routing

    proxy_a, _proxy_b = two_proxies.proxies
    engine_two = two_proxies.engines[1]
    engine_two.kill9()
    wait_for(lambda: proxy_a.metrics()["clusters"]["2"]["health"] == "down", 10, what="cluster 2 down")
    content = service_task_process("mp-channel", "mp-channel")

    async def deploy_through_channel() -> int:
        channel = routing.connect(clusters_file=two_proxies.clusters_file, journal=two_proxies.journal)
        try:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            response = await stub.DeployResource(
                pb.DeployResourceRequest(resources=[pb.Resource(name="mp-channel.bpmn", content=content)]),
                timeout=30,
            )
            return int(response.key)
        finally:
            await channel.close()

    assert cluster_of(asyncio.run(deploy_through_channel())) == 1
    wait_for(
        lambda: proxy_a.metrics()["clusters"]["2"]["pendingDeployments"] == 1,
        5,
        what="the channel's deployment pending for cluster 2 in proxy A",
    )
    engine_two.start()
    wait_for(
        lambda: proxy_a.metrics()["clusters"]["2"]["pendingDeployments"] == 0,
        20,
        what="proxy A replayed the channel's deployment to cluster 2",
    )
    assert _versions(engine_two, "mp-channel") == [(1, _checksum(content))]

    _deploy(proxy_a.address, "mp-channel-2.bpmn", service_task_process("mp-channel-2", "mp-channel"))

    async def create_through_channel() -> set[int]:
        channel = routing.connect(clusters_file=two_proxies.clusters_file, journal=two_proxies.journal)
        try:
            client = ZeebeClient(channel)
            keys = [(await client.run_process("mp-channel-2")).process_instance_key for _ in range(6)]
            return {cluster_of(k) for k in keys}
        finally:
            await channel.close()

    assert asyncio.run(create_through_channel()) == {1, 2}
