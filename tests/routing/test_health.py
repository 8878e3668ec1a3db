"""HealthMonitor against a real gRPC gateway on loopback that counts the Topology probes it gets.

Traffic vouches for an up cluster (routing/health.py): while forwarded calls succeed the monitor
probes at most every PROBE_MAX_AGE seconds instead of every tick, and nothing is detected later
than before: probes come back at every tick as soon as traffic stops vouching, and a cluster
whose probes fail is taken down even while traffic to it still succeeds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
from pyzeebe.proto import gateway_pb2, gateway_pb2_grpc

from routing.clusters import Cluster, ClusterSet
from routing.health import PROBE_MAX_AGE, Health, HealthMonitor
from routing.upstream import ChannelPool

INTERVAL = 0.1  # a tick every 100 ms: 10 ticks a second (traffic every 10 ms keeps vouching)


class CountingGateway(gateway_pb2_grpc.GatewayServicer):
    def __init__(self) -> None:
        self.probes = 0
        self.failing = False

    async def Topology(
        self, request: gateway_pb2.TopologyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.TopologyResponse:
        self.probes += 1
        if self.failing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "refusing probes")
        return gateway_pb2.TopologyResponse(clusterSize=1, partitionsCount=1, replicationFactor=1)


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.01)


async def _probes_during(gateway: CountingGateway, seconds: float, traffic: HealthMonitor | None) -> int:
    """Probes the gateway got in ``seconds``; with ``traffic``, a forwarded call succeeds every 10 ms."""
    before = gateway.probes
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if traffic is not None:
            traffic.report_success(1)
        await asyncio.sleep(0.01)
    return gateway.probes - before


def test_traffic_vouches_for_a_cluster_and_probes_come_back_when_it_stops_or_probes_fail() -> None:
    async def scenario() -> None:
        gateway = CountingGateway()  # type: ignore[abstract]  # only Topology is called
        server = grpc.aio.server()
        gateway_pb2_grpc.add_GatewayServicer_to_server(gateway, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        pool = ChannelPool()
        monitor = HealthMonitor(
            ClusterSet([Cluster(id=1, address=f"127.0.0.1:{port}")]), pool, interval=INTERVAL, deadline=2.0
        )
        runner = asyncio.ensure_future(monitor.run())
        try:
            await _until(lambda: monitor.is_up(1), 10, "the cluster up")

            # No traffic: a probe at every tick (20 in 2 s; at least 6 even on a loaded machine).
            idle = await _probes_during(gateway, 2.0, traffic=None)
            assert idle >= 6, idle

            # Traffic: at most one probe per PROBE_MAX_AGE (2 s -> about 2), never none (the
            # topology is kept fresh). Before traffic vouched: ~20 probes.
            busy_seconds = 2 * PROBE_MAX_AGE
            busy = await _probes_during(gateway, busy_seconds, traffic=monitor)
            assert 1 <= busy <= busy_seconds / PROBE_MAX_AGE + 2, busy
            assert monitor.status(1).status is Health.UP

            # Traffic stops: probes at every tick again.
            again = await _probes_during(gateway, 2.0, traffic=None)
            assert again >= 6, again

            # Probes fail while forwarded calls still succeed: down all the same, within
            # PROBE_MAX_AGE and two ticks (bounded generously for a loaded machine).
            gateway.failing = True
            deadline = time.monotonic() + 10
            while not monitor.is_down(1):
                assert time.monotonic() < deadline, "a cluster refusing probes stayed up under traffic"
                monitor.report_success(1)
                await asyncio.sleep(0.01)
            assert "refusing probes" in monitor.status(1).last_error

            # And up again once probes succeed.
            gateway.failing = False
            await _until(lambda: monitor.is_up(1), 10, "the cluster up again")
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await monitor.close()
            await pool.close()
            await server.stop(0)

    asyncio.run(scenario())
