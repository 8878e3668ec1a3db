"""The minimal HTTP/1.0 ``GET /metrics`` endpoint that the engine and the proxy serve their
Prometheus registries on (engine/metrics.py, routing/metrics.py): one request per connection, a
bounded read (5 s, 64 KiB), 404 for anything else, 500 (logged) when a collector fails. No web
framework: it runs on the program's own event loop beside its gRPC server."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def serve_registry(registry: CollectorRegistry, *, host: str, port: int) -> asyncio.Server:
    """A minimal HTTP/1.0 endpoint: GET /metrics answers the registry, anything else 404."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5.0)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            path = request_line[1].split("?", 1)[0] if len(request_line) >= 2 else ""
            if request_line[:1] == ["GET"] and path == "/metrics":
                try:
                    status, body, content_type = "200 OK", generate_latest(registry), CONTENT_TYPE
                except Exception as error:  # a collector bug answers 500 and is logged, never hangs up
                    log.exception("collecting metrics failed")
                    status, body, content_type = (
                        "500 Internal Server Error",
                        f"{error!r}\n".encode(),
                        "text/plain",
                    )
            else:
                status, body, content_type = "404 Not Found", b"only GET /metrics\n", "text/plain"
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode("latin-1")
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that sends no complete request within 5 s (or 64 KiB) gets nothing
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
