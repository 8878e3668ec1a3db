"""gRPC channels to the clusters' gateways, one per address, shared by every proxied call.

Channel options matter for failover: gRPC's default reconnect backoff grows to 120 s, so a
cluster restarted after a crash would look dead for minutes. We cap it at 1 s so the health
checker (every 250 ms) sees a returning cluster quickly. Calls are made without
``wait_for_ready``: against a dead cluster they fail at once with UNAVAILABLE instead of hanging,
which is what placement retry needs.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from pyzeebe.proto import gateway_pb2_grpc

from routing.security import UpstreamSecurity

log = logging.getLogger(__name__)

CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
]


class Upstream:
    """An async channel and Gateway stub for one cluster address."""

    def __init__(self, address: str, security: UpstreamSecurity | None = None) -> None:
        self.address = address
        self.security = security
        if security is not None and security.tls:
            # TLS (plus OAuth call credentials if configured); never a plaintext fallback.
            self.channel = grpc.aio.secure_channel(
                address,
                security.channel_credentials(),
                options=CHANNEL_OPTIONS + security.channel_options(),
            )
        else:
            self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)


class ChannelPool:
    """Async upstream channels keyed by address; an address no longer used is closed later."""

    def __init__(self) -> None:
        self._upstreams: dict[str, Upstream] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._security: dict[str, UpstreamSecurity | None] = {}  # per address (set by configure)

    def get(self, address: str) -> Upstream:
        upstream = self._upstreams.get(address)
        if upstream is None:
            upstream = Upstream(address, self._security.get(address))
            self._upstreams[address] = upstream
        return upstream

    def configure(self, security: dict[str, UpstreamSecurity | None]) -> None:
        """Record each address's TLS/OAuth settings; a channel whose settings changed is replaced
        (the old one closes after the grace period, like a removed address's)."""
        self._security = dict(security)
        for address, upstream in list(self._upstreams.items()):
            if upstream.security != self._security.get(address):
                del self._upstreams[address]
                self._close_soon(upstream, 30.0)

    def retain(self, addresses: set[str], grace_seconds: float = 30.0) -> None:
        """Close channels to addresses not in ``addresses`` after a grace period.

        The grace period lets calls that already picked the old channel (a long poll, a stream)
        finish instead of being cut off by a configuration change.
        """
        for address in list(self._upstreams):
            if address not in addresses:
                self._close_soon(self._upstreams.pop(address), grace_seconds)

    def _close_soon(self, upstream: Upstream, grace_seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self._close_later(upstream, grace_seconds))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_later(self, upstream: Upstream, grace_seconds: float) -> None:
        await asyncio.sleep(grace_seconds)
        await upstream.channel.close()

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        for upstream in list(self._upstreams.values()):
            await upstream.channel.close()
        self._upstreams.clear()
