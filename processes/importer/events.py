"""Channels events after a committed import batch (CONVENTIONS §3: side effects after commit).

`send_instance_events_on_commit` is the one helper: it registers a `transaction.on_commit` callback
that hands the batch's events to a sender thread, which sends an ``instance.changed`` event
(handled by console.consumers.InstanceEventsConsumer) to each named group. The sender thread owns
one event loop for the life of the process, so the channel layer's Redis connections are reused,
and the sends of a batch run concurrently; the importer goes on with its next batch meanwhile. If
the sender falls behind by more than MAX_BATCHES_IN_FLIGHT batches, the importer waits for it
(back-pressure, nothing dropped). A failure to send is logged and never undoes or stalls the
import: pages also refresh on their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Sequence

from channels.layers import get_channel_layer
from django.db import transaction

from console.consumers import instance_group_name

logger = logging.getLogger(__name__)

# Concurrent group_send calls in flight; bounded so a huge batch cannot exhaust Redis connections.
MAX_CONCURRENT_SENDS = 8
MAX_BATCHES_IN_FLIGHT = 4
FLUSH_TIMEOUT_SECONDS = 30.0


class _Sender:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._in_flight: list[concurrent.futures.Future[None]] = []

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="instance-events", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop

    def submit(self, pairs: Sequence[tuple[int, int]]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        self._in_flight = [future for future in self._in_flight if not future.done()]
        while len(self._in_flight) >= MAX_BATCHES_IN_FLIGHT:
            concurrent.futures.wait(self._in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
            self._in_flight = [future for future in self._in_flight if not future.done()]
        future = asyncio.run_coroutine_threadsafe(_send_all(layer, list(pairs)), self._ensure_loop())
        self._in_flight.append(future)

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        """Wait until every submitted event is sent (or failed): for clean shutdown and tests."""
        concurrent.futures.wait(list(self._in_flight), timeout=timeout)
        self._in_flight = []


async def _send_all(layer: object, pairs: list[tuple[int, int]]) -> None:
    limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

    async def send(group_key: int, changed_key: int) -> None:
        async with limit:
            await layer.group_send(  # type: ignore[attr-defined]
                instance_group_name(group_key), {"type": "instance.changed", "global_key": changed_key}
            )

    results = await asyncio.gather(
        *(send(group, changed) for group, changed in pairs), return_exceptions=True
    )
    failed = [result for result in results if isinstance(result, BaseException)]
    if failed:
        logger.warning("%d of %d instance events not sent: %s", len(failed), len(pairs), failed[0])


_sender = _Sender()


def send_instance_events_on_commit(pairs: Sequence[tuple[int, int]]) -> None:
    """After commit, send {"type": "instance.changed", "global_key": changed} to the group of
    `group_key`, for every (group_key, changed) pair."""
    if not pairs:
        return
    pairs = list(pairs)
    transaction.on_commit(lambda: _sender.submit(pairs))


def flush_instance_events(timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
    _sender.flush(timeout)
