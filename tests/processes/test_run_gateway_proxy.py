"""`manage.py run_gateway_proxy`: the proxy follows the Cluster table (documented: within 2 s).

Two real engine processes, the real command as a subprocess reading the test database, and
pyzeebe as the client through the proxy.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from django.db import connection
from pyzeebe import ZeebeClient, create_insecure_channel

from processes import services
from routing.keys import cluster_of
from tests.support import ServiceProcess, engine_process, free_port, sequence_process, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROCESS_ID = "proxy-table-probe"


def start_proxy(work_dir: Path) -> ServiceProcess:
    """`manage.py run_gateway_proxy` on the test database; started once its gRPC health is SERVING."""
    settings = connection.settings_dict
    database_url = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    port = free_port()
    args = ["run_gateway_proxy", "--port", str(port), "--state-dir", str(work_dir / "state")]
    env = {"DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": "test-only"}
    return ServiceProcess("proxy", "manage", args, port=port, work_dir=work_dir, env=env).start()


async def create_instances(address: str, count: int) -> list[int]:
    client = ZeebeClient(create_insecure_channel(grpc_address=address))
    keys = []
    for _ in range(count):
        response = await client.run_process(PROCESS_ID)
        keys.append(response.process_instance_key)
    return keys


async def deploy(address: str, bpmn_path: Path) -> None:
    deadline = time.monotonic() + 20
    while True:  # the proxy answers once it has read the table and checked the clusters
        # A fresh client per attempt: pyzeebe closes its channel after a connection failure.
        client = ZeebeClient(create_insecure_channel(grpc_address=address))
        try:
            await client.deploy_resource(str(bpmn_path))
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def proxy_sees(state_dir: Path, **expected: tuple[str, int]) -> bool:
    """The proxy's metrics.json (rewritten every second) shows each cluster id's (state, weight)."""
    try:
        clusters = json.loads((state_dir / "metrics.json").read_text())["clusters"]
    except (FileNotFoundError, ValueError, KeyError):
        return False
    return all(
        cluster_id in clusters and (clusters[cluster_id]["state"], clusters[cluster_id]["weight"]) == wanted
        for cluster_id, wanted in ((key.removeprefix("c"), value) for key, value in expected.items())
    )


def test_placement_follows_the_cluster_table(tmp_path: Path):
    engines = [engine_process(tmp_path / f"engine-{i}") for i in (1, 2)]
    proxy = None
    try:
        first = services.cluster_create(cluster_id=1, name="blue", gateway_address=engines[0].address)
        second = services.cluster_create(cluster_id=2, name="green", gateway_address=engines[1].address)
        proxy = start_proxy(tmp_path / "routing")
        state_dir, address = tmp_path / "routing" / "state", proxy.address
        bpmn = tmp_path / "probe.bpmn"
        bpmn.write_bytes(sequence_process(PROCESS_ID, "probe-work"))
        asyncio.run(deploy(address, bpmn))

        placed = {cluster_of(key) for key in asyncio.run(create_instances(address, 20))}
        assert placed == {1, 2}, "equal weights must place instances on both clusters"

        services.cluster_drain(cluster=second)
        wait_for(
            lambda: proxy_sees(state_dir, c2=("draining", 1)), timeout=15, what="the proxy to see the drain"
        )
        placed_after_drain = [cluster_of(key) for key in asyncio.run(create_instances(address, 20))]
        assert set(placed_after_drain) == {1}

        services.cluster_activate(cluster=second)
        services.cluster_update(cluster=first, weight=0)
        wait_for(
            lambda: proxy_sees(state_dir, c1=("active", 0), c2=("active", 1)),
            timeout=15,
            what="the proxy to see the new weights",
        )
        placed_after_weights = [cluster_of(key) for key in asyncio.run(create_instances(address, 10))]
        assert set(placed_after_weights) == {2}
        assert proxy.serving(), "the proxy must still be running"
    finally:
        returncode = proxy.stop() if proxy is not None else None
        for engine in engines:
            engine.stop()
    assert returncode == 0, proxy.log_tail()
