"""Run the gateway proxy: the gRPC server, the cluster-source poller and the metrics file.

This is the API the Django management command builds on::

    from routing.server import ProxyServer, run_proxy

    def clusters_from_db():               # any callable; called in a worker thread
        return [{"id": c.id, "name": c.name, "address": c.address, "weight": c.weight,
                 "state": c.state} for c in Cluster.objects.all()]

    run_proxy(clusters_from_db, host="127.0.0.1", port=26500, state_dir="var/routing")

``run_proxy`` blocks until SIGTERM/SIGINT. Inside an existing event loop use
:class:`ProxyServer` (``await server.start()``, ``await server.stop()``). The source is polled
every ``poll_interval`` seconds (default 0.5, at most 1): a changed list is swapped in, an
invalid one is logged and the previous list kept.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pyzeebe.proto import gateway_pb2_grpc

from routing.clusters import Cluster, ClusterSource
from routing.core import RoutingCore
from routing.proxy import GatewayProxy

log = logging.getLogger(__name__)

GATEWAY_SERVICE = "gateway_protocol.Gateway"


class ProxyServer:
    """The proxy's gRPC server over a :class:`RoutingCore`; start/stop from an asyncio loop."""

    def __init__(
        self,
        source: ClusterSource | Iterable[Cluster],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
        journal_path: str | Path | None = None,
        poll_interval: float = 0.5,
        metrics_interval: float = 1.0,
        health_interval: float = 0.25,
        health_deadline: float = 0.3,
        tls: grpc.ServerCredentials | None = None,
        auth: grpc.aio.ServerInterceptor | None = None,
    ) -> None:
        self.tls = tls  # None: plaintext (--tls-cert/--tls-key; gatewaykit/auth.py)
        self.auth = auth  # None: no token required of callers (--oauth-*)
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.core = RoutingCore(
            source,
            state_dir=self.state_dir,
            journal_path=journal_path,
            poll_interval=poll_interval,
            metrics_interval=metrics_interval,
            health_interval=health_interval,
            health_deadline=health_deadline,
        )
        self.clusters = self.core.clusters
        self.proxy = GatewayProxy(self.core)
        self._server: grpc.aio.Server | None = None
        self._health_servicer = health.aio.HealthServicer()
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def metrics(self) -> dict[str, Any]:
        return self.core.metrics()

    async def refresh_clusters(self) -> bool:
        """Poll the cluster source once (see RoutingCore.refresh_clusters)."""
        return await self.core.refresh_clusters()

    async def start(self) -> int:
        """Load the cluster list, check the clusters once, bind and serve; returns the port."""
        await self.core.start()
        server = grpc.aio.server(
            interceptors=[self.auth] if self.auth is not None else None,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        gateway_pb2_grpc.add_GatewayServicer_to_server(self.proxy, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health_servicer, server)
        try:
            if self.tls is not None:
                port = server.add_secure_port(f"{self.host}:{self.requested_port}", self.tls)
            else:
                port = server.add_insecure_port(f"{self.host}:{self.requested_port}")
            if port == 0:
                raise OSError(f"cannot listen on {self.host}:{self.requested_port}")
        except BaseException:
            await self.core.close(hand_back_grace=0.0)
            raise
        await server.start()
        self._server = server
        self.port = port
        for service in (GATEWAY_SERVICE, ""):
            await self._health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("routing proxy listening on %s:%s", self.host, port)
        return port

    async def stop(self, grace: float = 2.0) -> None:
        """Stop accepting calls, let running ones finish for ``grace`` seconds, close upstreams."""
        if self._server is None:
            return
        await self._health_servicer.enter_graceful_shutdown()
        await self._server.stop(grace)
        await self.core.close()
        self._server = None
        self._stopped.set()
        log.info("routing proxy stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(server: ProxyServer) -> None:
    """Start ``server`` and run until SIGTERM or SIGINT, then stop cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        await stop.wait()
        log.info("signal received, stopping")
    finally:
        await server.stop()


def run_proxy(source: ClusterSource | Iterable[Cluster], **options: Any) -> None:
    """Blocking entry point: build a ProxyServer with ``options`` and serve until a signal."""
    asyncio.run(serve(ProxyServer(source, **options)))
