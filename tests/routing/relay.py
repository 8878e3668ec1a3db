"""A TCP relay on 127.0.0.1 that can lose a cluster's answers: a real network fault, not a mock.

The proxy talks to an engine through it. ``drop_answers()`` keeps forwarding what the proxy
sends (the engine gets and executes the command) but throws away what the engine sends back;
``cut()`` then closes every connection, so the proxy's call fails after its request was
delivered: exactly the "cluster took the create but the answer was lost" case of issue 21.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.services import free_port


class TcpRelay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._drop_answers = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpRelay:
        self._thread.start()
        self._call(self._start())
        return self

    def drop_answers(self) -> None:
        """From now on the engine's bytes never reach the proxy (requests still do)."""
        self._drop_answers = True

    def cut(self) -> None:
        """Close every relayed connection at once and forward normally again afterwards."""
        self._call(self._cut())

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self._drop_answers = False

    async def _stop(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            engine_reader, engine_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update({client_writer, engine_writer})

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if answers and self._drop_answers:
                        continue
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(
            pump(client_reader, engine_writer, answers=False),
            pump(engine_reader, client_writer, answers=True),
        )
