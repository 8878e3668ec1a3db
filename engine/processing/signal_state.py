"""Signal subscriptions of a partition (reference §3.4-3.5 SIGNAL_SUBSCRIPTION, §5.2), kept
apart from `state.py` so that the partition state can hold them without importing the signal
behaviours (engine/processing/triggers/signals.py holds the appliers).

A subscription is either a catch event of an active element instance (intermediate catch,
boundary, event sub-process start: `catchEventInstanceKey` is the owner instance) or a signal
start event of the latest version of a process (`catchEventInstanceKey` -1, kept on the
deployment partition only, so a broadcast starts one instance, not one per partition).

A signal thrown inside a partition (an intermediate throw or end event) must reach every
partition: `connect` gives the processing a way to ask the broker for a broadcast, run after
the throwing command is done (processing never nests).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

#: (signal name, variables): broadcast a signal thrown by a process (set by the broker)
Broadcast = Callable[[str, dict[str, Any]], None]

_CONNECTIONS: weakref.WeakKeyDictionary[Any, Broadcast] = weakref.WeakKeyDictionary()


def connect(ctx: Any, broadcast: Broadcast) -> None:
    _CONNECTIONS[ctx] = broadcast


def broadcaster_of(ctx: Any) -> Broadcast | None:
    """The broker's broadcast; None for a partition used alone (unit tests): nothing is sent."""
    return _CONNECTIONS.get(ctx)


class SignalState:
    def __init__(self) -> None:
        #: subscription key -> SIGNAL_SUBSCRIPTION value
        self.subscriptions: dict[int, dict[str, Any]] = {}
        #: signal name -> subscription keys in opening order (derived)
        self.by_name: dict[str, dict[int, None]] = {}
        #: catchEventInstanceKey -> subscription keys (derived; not for start events)
        self.by_owner: dict[int, dict[int, None]] = {}

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
        return {"signalSubscriptions": [[key, value] for key, value in self.subscriptions.items()]}

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        for key, value in snapshot.get("signalSubscriptions", []):
            self.add(key, value)
