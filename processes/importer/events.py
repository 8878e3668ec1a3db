"""Channels events after a committed import batch (CONVENTIONS §3: side effects after commit).

`send_instance_events_on_commit` is the one helper: it registers a `transaction.on_commit` callback
that sends an ``instance.changed`` event (handled by console.consumers.InstanceEventsConsumer) to
each named group. All sends of a batch run concurrently in one event loop, so a batch that touched
a thousand instances costs one round of Redis calls, not a thousand sequential ones. A failure to
send is logged and never undoes or stalls the import: pages also refresh on their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from console.consumers import instance_group_name

logger = logging.getLogger(__name__)

# Concurrent group_send calls in flight; bounded so a huge batch cannot exhaust Redis connections.
MAX_CONCURRENT_SENDS = 64


def send_instance_events_on_commit(pairs: Sequence[tuple[int, int]]) -> None:
    """After commit, send {"type": "instance.changed", "global_key": changed} to the group of
    `group_key`, for every (group_key, changed) pair."""
    if not pairs:
        return
    pairs = list(pairs)
    transaction.on_commit(lambda: send_instance_events(pairs))


def send_instance_events(pairs: Sequence[tuple[int, int]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

        async def send(group_key: int, changed_key: int) -> None:
            async with limit:
                await layer.group_send(
                    instance_group_name(group_key), {"type": "instance.changed", "global_key": changed_key}
                )

        results = await asyncio.gather(
            *(send(group, changed) for group, changed in pairs), return_exceptions=True
        )
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            logger.warning("%d of %d instance events not sent: %s", len(failed), len(pairs), failed[0])

    try:
        async_to_sync(send_all)()
    except Exception:
        logger.exception("instance events not sent")
