"""SIGNAL BROADCAST (reference §1.3 BroadcastSignal, §3.4, §5.2): Zeebe's
SignalBroadcastProcessor. A new broadcast takes a key of this partition (its origin: partition
1 for BroadcastSignal, the throwing partition for a thrown signal's follow-up command); the
broker distributes it to every other partition with that key (Zeebe's command distribution,
engine/broker.py). Each partition writes SIGNAL BROADCASTED and triggers the subscriptions of
the signal's name it holds (triggers/signals.py `broadcast`).

A distributed broadcast a partition already has (its key is at or below what the partition
received from that origin, signal_state.py) is refused: the broker never sends one, and this
keeps a partition from triggering one broadcast twice whatever the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.registry import processor
from engine.processing.triggers.signals import broadcast
from engine.records import ALREADY_EXISTS, INVALID_ARGUMENT, decode_partition


@dataclass(slots=True)
class BroadcastSignal:
    name: str
    variables: dict[str, Any]
    #: True on the partitions the broadcast is distributed to (the key is the origin's)
    distributed: bool = False


@processor("SIGNAL", "BROADCAST")
def broadcast_signal(ctx: ProcessingContext, command: Command) -> int:
    request: BroadcastSignal = command.request
    if not request.distributed:
        key = ctx.state.new_key()
        broadcast(ctx, key, dict(command.value), distributed=False)
        return key
    key = command.key
    origin = decode_partition(key) if key > 0 else 0
    if origin in (0, ctx.partition_id):
        raise Rejection(
            "BROADCAST",
            INVALID_ARGUMENT,
            f"Expected a distributed signal key of another partition, but got {key}",
        )
    if ctx.state.signal_state.has_received(origin, key):
        raise Rejection(
            "BROADCAST",
            ALREADY_EXISTS,
            f"Expected to broadcast the distributed signal with key '{key}', but it was already broadcast here",
        )
    broadcast(ctx, key, dict(command.value), distributed=True)
    return key
