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

Here a command is in flight from the moment its gRPC call reaches the engine until its answer
is ready (its records written and fsynced, group commit). The engine processes a command as soon
as its handler runs, so what piles up under a flood is exactly this: calls whose records wait
for the next fsync, their coroutines, requests and answers. Bounding it bounds the memory a
flood can take; when the flood stops, in-flight commands drain with the next fsyncs and new
commands are accepted again by themselves.

The bound is applied by a gRPC server interceptor (`BackpressureInterceptor`, installed by
engine/server.py), before the gateway sees the call: a key-addressed command counts against the
partition its key names (reference §2.1), a command the engine places itself (creates, messages,
signals, decisions) against the partitions together, as the round-robin spreads them evenly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

log = logging.getLogger("engine.backpressure")

DEFAULT_LIMIT = 256
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


class CommandLimiter:
    """In-flight commands per partition (0 = no bound), for `partition_count` partitions."""

    def __init__(self, limit: int = DEFAULT_LIMIT, partition_count: int = 1):
        if limit < 0:
            raise ValueError("the backpressure limit must be 0 (off) or positive")
        self.limit = limit
        self.partition_count = max(1, partition_count)
        self.keyed: dict[int, int] = {}  # partition -> in-flight key-addressed commands
        self.placed = 0  # in-flight commands the engine places on a partition itself
        self.rejected = 0
        self._logged_at = 0.0

    def in_flight(self, partition_id: int) -> float:
        """The partition's share: its key-addressed commands plus its part of the placed ones."""
        return self.keyed.get(partition_id, 0) + self.placed / self.partition_count

    def _refuse(self, what: str, value_type: str, intent: str) -> bool:
        self.rejected += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            log.warning(
                "backpressure: %s at its limit of %d commands in flight; refusing %s %s "
                "(in flight: %s key-addressed, %d placed; %d refused so far)",
                what,
                self.limit,
                value_type,
                intent,
                dict(self.keyed),
                self.placed,
                self.rejected,
            )
        return False

    def try_keyed(self, partition_id: int, value_type: str, intent: str) -> bool:
        if (
            self.limit
            and (value_type, intent) not in ALWAYS_ACCEPTED
            and self.in_flight(partition_id) >= self.limit
        ):
            return self._refuse(f"partition {partition_id}", value_type, intent)
        self.keyed[partition_id] = self.keyed.get(partition_id, 0) + 1
        return True

    def release_keyed(self, partition_id: int) -> None:
        self.keyed[partition_id] = max(0, self.keyed.get(partition_id, 0) - 1)

    def try_placed(self, value_type: str, intent: str) -> bool:
        total = sum(self.keyed.values()) + self.placed
        if (
            self.limit
            and (value_type, intent) not in ALWAYS_ACCEPTED
            and total >= self.limit * self.partition_count
        ):
            return self._refuse("every partition", value_type, intent)
        self.placed += 1
        return True

    def release_placed(self) -> None:
        self.placed = max(0, self.placed - 1)


# gRPC method -> (value type, intent, the request field whose key names the partition, or None
# when the engine places the command itself). Deployments and job activation are not limited.
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "CreateProcessInstance": ("PROCESS_INSTANCE_CREATION", "CREATE", None),
    "CreateProcessInstanceWithResult": ("PROCESS_INSTANCE_CREATION", "CREATE_WITH_AWAITING_RESULT", None),
    "PublishMessage": ("MESSAGE", "PUBLISH", None),
    "BroadcastSignal": ("SIGNAL", "BROADCAST", None),
    "EvaluateDecision": ("DECISION_EVALUATION", "EVALUATE", None),
    "CancelProcessInstance": ("PROCESS_INSTANCE", "CANCEL", "processInstanceKey"),
    "CompleteJob": ("JOB", "COMPLETE", "jobKey"),
    "FailJob": ("JOB", "FAIL", "jobKey"),
    "ThrowError": ("JOB", "THROW_ERROR", "jobKey"),
    "UpdateJobRetries": ("JOB", "UPDATE_RETRIES", "jobKey"),
    "UpdateJobTimeout": ("JOB", "UPDATE_TIMEOUT", "jobKey"),
    "ResolveIncident": ("INCIDENT", "RESOLVE", "incidentKey"),
    "SetVariables": ("VARIABLE_DOCUMENT", "UPDATE", "elementInstanceKey"),
    "ModifyProcessInstance": ("PROCESS_INSTANCE_MODIFICATION", "MODIFY", "processInstanceKey"),
    "MigrateProcessInstance": ("PROCESS_INSTANCE_MIGRATION", "MIGRATE", "processInstanceKey"),
    "DeleteResource": ("RESOURCE_DELETION", "DELETE", "resourceKey"),
}
PARTITION_SHIFT = 51  # reference §2.1: the partition id is in bits 51..63 of a key


class BackpressureInterceptor(grpc.aio.ServerInterceptor):
    """Refuses a command with RESOURCE_EXHAUSTED before the gateway sees it when its partition
    (or, for commands the engine places, every partition) is at the limit."""

    def __init__(self, limiter: CommandLimiter):
        self.limiter = limiter

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method.rsplit("/", 1)[-1]
        command = COMMANDS.get(method)
        if handler is None or command is None or not handler.unary_unary or not self.limiter.limit:
            return handler
        behaviour = handler.unary_unary
        limiter = self.limiter
        value_type, intent, key_field = command

        async def limited(request: Any, context: grpc.aio.ServicerContext) -> Any:
            partition_id: int | None = None
            if key_field is not None:
                key = int(getattr(request, key_field, 0))
                candidate = key >> PARTITION_SHIFT if key > 0 else 0
                # An unknown partition is the gateway's NOT_FOUND to give, not ours.
                if 1 <= candidate <= limiter.partition_count:
                    partition_id = candidate
                if partition_id is not None and not limiter.try_keyed(partition_id, value_type, intent):
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, RESOURCE_EXHAUSTED_MESSAGE)
            elif not limiter.try_placed(value_type, intent):
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, RETRIES_EXHAUSTED_MESSAGE)
            try:
                return await behaviour(request, context)
            finally:
                if key_field is None:
                    limiter.release_placed()
                elif partition_id is not None:
                    limiter.release_keyed(partition_id)

        return grpc.unary_unary_rpc_method_handler(
            limited,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
