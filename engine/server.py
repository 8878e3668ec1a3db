"""Serve one embedded cluster: the broker behind a grpc.aio gateway plus the health service."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from engine.backpressure import DEFAULT_LIMIT, BackpressureInterceptor, CommandLimiter
from engine.broker import Broker
from engine.exporters.process import ExporterProcess
from engine.gateway import GatewayServicer
from engine.metrics import CallMetrics, serve_metrics
from engine.values import MAX_MESSAGE_BYTES
from gatewaykit.auth import BearerAuthInterceptor

log = logging.getLogger("engine.server")

GATEWAY_SERVICE = "gateway_protocol.Gateway"


class EngineServer:
    """A running engine: `await start()`, then `await stop()` (also on SIGTERM/SIGINT)."""

    def __init__(
        self,
        data_dir: str | Path,
        partitions: int = 1,
        host: str = "127.0.0.1",
        port: int = 26500,
        *,
        tls: grpc.ServerCredentials | None = None,
        auth: BearerAuthInterceptor | None = None,
        export_urls: list[str] | None = None,
        backpressure_limit: int = DEFAULT_LIMIT,
    ):
        self.broker = Broker(data_dir, partitions)
        # In-flight commands per partition before RESOURCE_EXHAUSTED (engine/backpressure.py; 0 = off).
        self.backpressure = CommandLimiter(backpressure_limit, self.broker.partition_count)
        self.export_urls = list(export_urls or [])  # --export; engine/exporters/
        self.exporters: ExporterProcess | None = None
        self.tls = tls  # None: plaintext (--tls-cert/--tls-key; gatewaykit/auth.py)
        self.auth = auth  # None: no token required (--oauth-*)
        self.host = host
        self.port = port
        self.server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        self.call_metrics: CallMetrics | None = None  # set before start() to count calls (--metrics-port)

    async def start(self) -> int:
        await self.broker.start()
        if self.export_urls:
            # After recovery: the logs are whole (torn tails cut) when the exporters read them.
            self.exporters = ExporterProcess(
                self.broker.data_dir, self.broker.partition_count, self.export_urls, track_durable=True
            )
            for partition_id, partition in self.broker.partitions.items():
                # What recovery found is on disk; from now on, what each group commit fsynced.
                assert partition.writer is not None
                self.exporters.durable(partition_id, partition.writer.next_position - 1)
                partition.on_durable = functools.partial(self.exporters.durable, partition_id)
            self.exporters.start()
        # The recovered state is long-lived: keep it out of the cyclic GC's generations so
        # full collections (latency spikes) only scan what changes afterwards.
        gc.collect()
        gc.freeze()
        # Auth first: a refused call is counted by nobody and reaches no handler.
        # Metrics before backpressure: refused calls are counted too.
        limiter = BackpressureInterceptor(self.backpressure) if self.backpressure.limit else None
        interceptors = [i for i in (self.auth, self.call_metrics, limiter) if i is not None]
        self.server = grpc.aio.server(
            interceptors=interceptors or None,
            options=[
                # One request may be at most MAX_MESSAGE_BYTES (4 MiB, Zeebe's maxMessageSize):
                # larger ones are refused by grpc with RESOURCE_EXHAUSTED before they cost anything.
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        servicer = GatewayServicer(self.broker, self.host, self.port)
        pb_grpc.add_GatewayServicer_to_server(servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if self.tls is not None:
            bound = self.server.add_secure_port(f"{self.host}:{self.port}", self.tls)
        else:
            bound = self.server.add_insecure_port(f"{self.host}:{self.port}")
        if bound == 0:
            raise OSError(f"cannot bind {self.host}:{self.port}")
        self.port = bound
        servicer.port = bound
        await self.server.start()
        await _set_status(self.health, GATEWAY_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await _set_status(self.health, "", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "engine serving on %s:%d with %d partition(s), data in %s",
            self.host,
            bound,
            self.broker.partition_count,
            self.broker.data_dir,
        )
        return bound

    async def stop(self, grace: float = 1.0) -> None:
        await _set_status(self.health, GATEWAY_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.server is not None:
            await self.server.stop(grace)
        if self.exporters is not None:
            await self.exporters.stop()
        await self.broker.stop()
        log.info("engine stopped")


async def _set_status(servicer: object, service: str, status: int) -> None:
    result = servicer.set(service, status)  # type: ignore[attr-defined]
    if asyncio.iscoroutine(result):
        await result


async def serve(
    data_dir: str | Path,
    partitions: int,
    host: str,
    port: int,
    metrics_port: int | None = None,
    *,
    tls: grpc.ServerCredentials | None = None,
    auth: BearerAuthInterceptor | None = None,
    export_urls: list[str] | None = None,
    backpressure_limit: int = DEFAULT_LIMIT,
) -> None:
    engine = EngineServer(
        data_dir,
        partitions,
        host,
        port,
        tls=tls,
        auth=auth,
        export_urls=export_urls,
        backpressure_limit=backpressure_limit,
    )
    if metrics_port is not None:
        engine.call_metrics = CallMetrics()
    await engine.start()
    if metrics_port is not None:
        await serve_metrics(engine, port=metrics_port)  # on 127.0.0.1 whatever --host is
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stop signal received")
    await engine.stop()
