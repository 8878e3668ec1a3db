"""Backpressure: a bound on each partition's in-flight commands, the rest refused with RESOURCE_EXHAUSTED.

Zeebe's broker counts, per partition, the commands it has received and not yet answered (the
command API's request limiter); past the limit a new command gets the broker error
RESOURCE_EXHAUSTED "Reached maximum capacity of requests handled", which the gateway maps to the
gRPC status RESOURCE_EXHAUSTED (reference §1.5) and pyzeebe raises as `ZeebeBackPressureError`.
A command that the gateway may send to any partition (CreateProcessInstance) is tried on the
next partitions first; when every one refuses, the answer is RESOURCE_EXHAUSTED with the
gateway's RequestRetriesExhausted message. Commands that let work finish and free resources are
always accepted (the docs: "during backpressure the broker may reject everything except
CompleteJob and FailJob"; Zeebe's limiter also lets cancel and deployments through).

Here a command is in flight from the moment the gateway hands it to its partition until its
answer is ready (its records written and fsynced, group commit). The engine processes a command
as soon as its handler runs, so what piles up under a flood is exactly this: commands whose
records wait for the next fsync, their callers' coroutines and answers. Bounding it bounds the
memory a flood can take; when the flood stops, in-flight commands drain with the next fsyncs
and new commands are accepted again by themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("engine.backpressure")

DEFAULT_LIMIT = 1000
RESOURCE_EXHAUSTED_MESSAGE = "Reached maximum capacity of requests handled"
RETRIES_EXHAUSTED_MESSAGE = (
    "Expected to execute the command on one of the partitions, but all failed; there are no more "
    "partitions available to retry. Please try again. If the error persists contact your zeebe operator"
)
# (value type, intent) never refused: they complete work and so relieve the partition.
ALWAYS_ACCEPTED = frozenset(
    {
        ("JOB", "COMPLETE"),
        ("JOB", "FAIL"),
        ("PROCESS_INSTANCE", "CANCEL"),
        ("DEPLOYMENT", "CREATE"),
    }
)
LOG_EVERY_SECONDS = 10.0


class Backpressure(Exception):
    """The partition (or every partition) is at its limit; `message` is Zeebe's."""

    def __init__(self, message: str = RESOURCE_EXHAUSTED_MESSAGE):
        super().__init__(message)
        self.message = message


class CommandLimiter:
    """In-flight commands per partition, bounded by `limit` (0 = no bound)."""

    def __init__(self, limit: int = DEFAULT_LIMIT):
        if limit < 0:
            raise ValueError("the backpressure limit must be 0 (off) or positive")
        self.limit = limit
        self.in_flight: dict[int, int] = {}
        self.rejected: dict[int, int] = {}
        self._logged_at = 0.0

    def try_acquire(self, partition_id: int, value_type: str, intent: str) -> bool:
        count = self.in_flight.get(partition_id, 0)
        if self.limit and count >= self.limit and (value_type, intent) not in ALWAYS_ACCEPTED:
            self.rejected[partition_id] = self.rejected.get(partition_id, 0) + 1
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY_SECONDS:
                self._logged_at = now
                log.warning(
                    "backpressure: partition %d has %d commands in flight (limit %d); refusing %s %s "
                    "(refused so far: %s)",
                    partition_id,
                    count,
                    self.limit,
                    value_type,
                    intent,
                    self.rejected,
                )
            return False
        self.in_flight[partition_id] = count + 1
        return True

    def release(self, partition_id: int) -> None:
        self.in_flight[partition_id] = max(0, self.in_flight.get(partition_id, 0) - 1)

    @contextmanager
    def command(self, partition_id: int, value_type: str, intent: str) -> Iterator[None]:
        """Hold a slot of `partition_id` for one command; raises Backpressure when there is none."""
        if not self.try_acquire(partition_id, value_type, intent):
            raise Backpressure()
        try:
            yield
        finally:
            self.release(partition_id)

    def first_free(self, partition_ids: list[int], value_type: str, intent: str) -> int:
        """Acquire a slot on the first partition of `partition_ids` (the round-robin order) that has
        one, as the gateway retries the next partition on RESOURCE_EXHAUSTED; the caller releases it.
        Raises Backpressure with the gateway's retries-exhausted message when none has."""
        for partition_id in partition_ids:
            if self.try_acquire(partition_id, value_type, intent):
                return partition_id
        raise Backpressure(RETRIES_EXHAUSTED_MESSAGE)
