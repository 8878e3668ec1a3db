"""Signal state of a partition (reference §3.4-3.5 SIGNAL_SUBSCRIPTION, §5.2), kept apart
from `state.py` so that the partition state can hold it without importing the signal behaviours
(engine/processing/triggers/signals.py holds the appliers).

Subscriptions: a catch event of an active element instance (intermediate catch, boundary, event
sub-process start: `catchEventInstanceKey` is the owner instance) or a signal start event of the
latest version of a process (`catchEventInstanceKey` -1, kept on the deployment partition only,
so a broadcast starts one instance, not one per partition).

Distribution (Zeebe's command distribution, retried until every partition has the command): a
broadcast is written first on its *origin* partition (partition 1 for BroadcastSignal; the
throwing partition for a signal thrown by a process, as Zeebe's follow-up SIGNAL BROADCAST
command) under a key of that partition, then distributed to every other partition with the same
key. Both sides are derived from the SIGNAL BROADCASTED events alone (no record of our own):
- `undistributed`: the origin's own broadcasts (key -> SIGNAL value) not yet known to be on
  every partition. The broker delivers them (live, again from its timer loop after a failure,
  and after a restart) and forgets one once every other partition has it durably.
- `received`: per origin partition, the highest key of the broadcasts this partition got from
  it. The broker delivers an origin's broadcasts to a partition strictly in key order (keys of
  one partition grow with its log; a failed delivery holds back the later ones), so "already
  has K" is `K <= received[origin]`: one integer per partition, kept in the snapshot, instead
  of a set of keys that could be forgotten by one partition's snapshot while another's replay
  still distributes the key. A partition never triggers a broadcast twice.

`connect` gives the processing a way to tell the broker that a partition wrote broadcasts of its
own to distribute, run after the command that wrote them (processing never nests).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

#: (origin partition id): distribute that partition's undistributed broadcasts (set by the broker)
Distribute = Callable[[int], None]

_CONNECTIONS: weakref.WeakKeyDictionary[Any, Distribute] = weakref.WeakKeyDictionary()


def connect(ctx: Any, distribute: Distribute) -> None:
    _CONNECTIONS[ctx] = distribute


def distributor_of(ctx: Any) -> Distribute | None:
    """The broker's distribution; None for a partition used alone (unit tests): nothing is sent."""
    return _CONNECTIONS.get(ctx)


class SignalState:
    def __init__(self) -> None:
        #: subscription key -> SIGNAL_SUBSCRIPTION value
        self.subscriptions: dict[int, dict[str, Any]] = {}
        #: signal name -> subscription keys in opening order (derived)
        self.by_name: dict[str, dict[int, None]] = {}
        #: catchEventInstanceKey -> subscription keys (derived; not for start events)
        self.by_owner: dict[int, dict[int, None]] = {}
        #: own broadcast key -> SIGNAL value, in key order, until every partition has it
        self.undistributed: dict[int, dict[str, Any]] = {}
        #: origin partition id -> highest broadcast key received from it
        self.received: dict[int, int] = {}

    def has_received(self, origin_partition_id: int, key: int) -> bool:
        return key <= self.received.get(origin_partition_id, 0)

    def add(self, key: int, value: dict[str, Any]) -> None:
        self.subscriptions[key] = dict(value)
        self.by_name.setdefault(str(value["signalName"]), {})[key] = None
        owner = int(value["catchEventInstanceKey"])
        if owner > 0:
            self.by_owner.setdefault(owner, {})[key] = None

    def remove(self, key: int) -> None:
        value = self.subscriptions.pop(key, None)
        if value is None:
            return
        name = str(value["signalName"])
        keys = self.by_name.get(name)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self.by_name[name]
        owner = int(value["catchEventInstanceKey"])
        owned = self.by_owner.get(owner)
        if owned is not None:
            owned.pop(key, None)
            if not owned:
                del self.by_owner[owner]

    def named(self, name: str) -> list[int]:
        return list(self.by_name.get(name, ()))

    def of_owner(self, owner_key: int) -> list[int]:
        return list(self.by_owner.get(owner_key, ()))

    def start_subscriptions(self, process_definition_key: int) -> list[int]:
        return [
            key
            for key, value in self.subscriptions.items()
            if int(value["catchEventInstanceKey"]) <= 0
            and int(value["processDefinitionKey"]) == process_definition_key
        ]

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "signalSubscriptions": [[key, value] for key, value in self.subscriptions.items()],
            "signalDistribution": {
                "undistributed": [[key, value] for key, value in self.undistributed.items()],
                "received": [[origin, key] for origin, key in self.received.items()],
            },
        }

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        for key, value in snapshot.get("signalSubscriptions", []):
            self.add(key, value)
        distribution = snapshot.get("signalDistribution")
        if distribution is None:
            if "signalSubscriptions" in snapshot:
                # Written by an engine that had signals but kept no distribution state: what
                # this partition received before the snapshot is unknown, and a default would
                # let a restart trigger a broadcast twice. The partition replays its log instead.
                raise ValueError("snapshot without signal distribution state (older engine)")
            return  # older than signals: nothing was broadcast before it
        self.undistributed = {key: value for key, value in distribution["undistributed"]}
        self.received = {origin: key for origin, key in distribution["received"]}
