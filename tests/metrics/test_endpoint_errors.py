"""A collector that fails (a renamed field, a bug) makes /metrics answer 500 with the error, logged,
instead of dropping the connection; the endpoint goes on serving."""

from __future__ import annotations

import asyncio
from typing import Any

from engine import metrics as engine_metrics
from routing import metrics as routing_metrics


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return answer


class _BrokenBroker:
    @property
    def partitions(self) -> Any:
        raise RuntimeError("partitions went away")


class _Engine:
    call_metrics = None
    broker = _BrokenBroker()


def test_a_failing_collector_answers_500() -> None:
    async def scenario() -> None:
        proxy_server = await routing_metrics.serve_metrics(lambda: {}, port=0)  # no "clusters" key
        engine_server = await engine_metrics.serve_metrics(_Engine(), port=0)
        try:
            for server in (proxy_server, engine_server):
                port = server.sockets[0].getsockname()[1]
                for _ in range(2):  # and again: still serving
                    answer = await _get(port)
                    assert answer.startswith(b"HTTP/1.0 500"), answer[:200]
            assert b"KeyError('clusters')" in await _get(proxy_server.sockets[0].getsockname()[1])
            assert b"partitions went away" in await _get(engine_server.sockets[0].getsockname()[1])
        finally:
            proxy_server.close()
            engine_server.close()

    asyncio.run(scenario())
