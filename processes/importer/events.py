"""Channels events after a committed import batch (CONVENTIONS §3: side effects after commit).

`send_instance_events_on_commit` is the one helper: it registers a `transaction.on_commit` callback
that hands the batch's events to a sender thread, which sends an ``instance.changed`` event
(handled by processes.consumers.InstanceEventsConsumer) to each named group. The sender thread owns
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

from processes.consumers import instance_group_name

logger = logging.getLogger(__name__)

# Concurrent group_send calls in flight; bounded so a huge batch cannot exhaust Redis connections.
MAX_CONCURRENT_SENDS = 8
MAX_BATCHES_IN_FLIGHT = 4
FLUSH_TIMEOUT_SECONDS = 30.0
MEMBER_CHECK_CHUNK = 1000  # group keys per EXISTS


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


async def _groups_with_members(layer: object, groups: set[str]) -> set[str] | None:
    """The groups someone listens to, in one pipelined round trip per Redis host; None: unknown.

    A batch changes thousands of instances and almost nobody watches any given one, but
    channels_redis spends two round trips on every group_send, members or not: in
    bench/importer.py the sender thread took nearly as much CPU as the import itself. Counting
    members first (ZCARD of the layer's own group key, hashed to its host as group_send does) sends
    only where someone listens. Expired members are counted too, which only costs a group_send
    that then prunes them. A consumer joining during the check missed nothing it could not see:
    it loads the page state after joining. Another channel layer (in-memory) gets every send.
    """
    try:
        group_key = layer._group_key  # type: ignore[attr-defined]
        consistent_hash = layer.consistent_hash  # type: ignore[attr-defined]
        connection = layer.connection  # type: ignore[attr-defined]
    except AttributeError:
        return None
    by_host: dict[int, list[str]] = {}
    for group in groups:
        by_host.setdefault(consistent_hash(group), []).append(group)
    found: set[str] = set()
    for index, names in by_host.items():
        client = connection(index)
        for start in range(0, len(names), MEMBER_CHECK_CHUNK):
            chunk = names[start : start + MEMBER_CHECK_CHUNK]
            keys = [group_key(name) for name in chunk]
            # Redis deletes an emptied sorted set, so one EXISTS answers "nobody" for a whole
            # chunk (the usual case); only a chunk with listeners is counted group by group.
            if not await client.exists(*keys):
                continue
            pipeline = client.pipeline(transaction=False)
            for key in keys:
                pipeline.zcard(key)
            counts = await pipeline.execute()
            found.update(name for name, count in zip(chunk, counts, strict=True) if count)
    return found


async def _send_all(layer: object, pairs: list[tuple[int, int]]) -> None:
    limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)
    named = [(instance_group_name(group), changed) for group, changed in pairs]
    try:
        listened = await _groups_with_members(layer, {name for name, _ in named})
    except Exception as error:  # a failed check means: send to every group
        logger.debug("group member check failed, sending to every group: %s", error)
        listened = None
    if listened is not None:
        named = [(name, changed) for name, changed in named if name in listened]
        if not named:
            return

    async def send(group_name: str, changed_key: int) -> None:
        async with limit:
            await layer.group_send(  # type: ignore[attr-defined]
                group_name, {"type": "instance.changed", "global_key": changed_key}
            )

    results = await asyncio.gather(*(send(name, changed) for name, changed in named), return_exceptions=True)
    failed = [result for result in results if isinstance(result, BaseException)]
    if failed:
        logger.warning("%d of %d instance events not sent: %s", len(failed), len(named), failed[0])


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
