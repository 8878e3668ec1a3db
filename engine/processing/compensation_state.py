"""Compensation subscriptions of a partition (COMPENSATION_SUBSCRIPTION, Zeebe 8.5's
CompensationSubscriptionState), kept apart from `state.py` so that the partition state can hold
them without importing the compensation behaviour (engine/processing/compensation.py holds the
appliers and the logic).

A subscription says "this completed activity can be compensated": it is written when an
activity with a compensation boundary event completes, or when a sub-process completes that
holds such subscriptions in its scope. Subscriptions are grouped by process instance, since
every lookup Zeebe makes is within one process instance.
"""

from __future__ import annotations

from typing import Any


class CompensationState:
    def __init__(self) -> None:
        #: process instance key -> subscription key -> COMPENSATION_SUBSCRIPTION value
        self.by_instance: dict[int, dict[int, dict[str, Any]]] = {}

    def put(self, key: int, value: dict[str, Any]) -> None:
        self.by_instance.setdefault(int(value["processInstanceKey"]), {})[key] = dict(value)

    def remove(self, key: int, process_instance_key: int) -> None:
        subscriptions = self.by_instance.get(process_instance_key)
        if subscriptions is None:
            return
        subscriptions.pop(key, None)
        if not subscriptions:
            del self.by_instance[process_instance_key]

    def of_instance(self, process_instance_key: int) -> dict[int, dict[str, Any]]:
        """The subscriptions of one process instance, in creation order (a copy)."""
        return dict(self.by_instance.get(process_instance_key, {}))

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "compensationSubscriptions": [
                [key, value]
                for subscriptions in self.by_instance.values()
                for key, value in subscriptions.items()
            ]
        }

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        for key, value in snapshot.get("compensationSubscriptions", []):
            self.put(key, value)
