"""Message state of a partition (reference §3.4, §5.2 "Messages"): both sides of Zeebe's
message correlation, kept apart from `state.py` so that the partition state can hold it
without importing the message behaviours (engine/processing/triggers/messages.py holds the
appliers, like decisions.py does for `DecisionState`).

A partition plays two parts, as in Zeebe:
- the *message partition* of a correlation key (`subscription_partition_id`, §2.3): it keeps
  the buffered MESSAGEs (until their time to live passes), the MESSAGE_SUBSCRIPTIONs of catch
  events waiting for that key, and the MESSAGE_START_EVENT_SUBSCRIPTIONs of the latest process
  versions (on every partition, since any partition may be a message partition);
- the *process instance partition*: it keeps the PROCESS_MESSAGE_SUBSCRIPTIONs of its element
  instances.
The two sides talk through commands sent to the other partition (`send`, set by the broker);
a command lost in a crash is sent again from the pending states after a restart (Zeebe's
pending-subscription checkers).
"""

from __future__ import annotations

import heapq
import weakref
from collections.abc import Callable
from typing import Any


def correlation_key_hash(correlation_key: str) -> int:
    """Java's String.hashCode recipe over the UTF-8 bytes, signed (reference §2.3)."""
    h = 0
    for byte in correlation_key.encode("utf-8"):
        signed = byte - 256 if byte > 127 else byte
        h = (31 * h + signed) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def subscription_partition_id(correlation_key: str, partition_count: int) -> int:
    """The message partition of a correlation key: abs(hash rem n) + 1, with Java's `%`."""
    h = correlation_key_hash(correlation_key)
    remainder = abs(h) % partition_count  # Java's rem truncates toward zero: |h rem n| == |h| mod n
    return remainder + 1


#: (target partition id, value type, intent, value): a command for another partition
Send = Callable[[int, str, str, dict[str, Any]], None]


class Connection:
    """How one partition's processing reaches the others (set by the broker; not state)."""

    def __init__(self, send: Send, partition_count: int):
        self.send = send
        self.partition_count = partition_count


#: ProcessingContext -> its Connection. Keyed by the context, which lives as long as its
#: partition (the state object is replaced on recovery and rollback, the context is not).
_CONNECTIONS: weakref.WeakKeyDictionary[Any, Connection] = weakref.WeakKeyDictionary()


def connect(ctx: Any, send: Send, partition_count: int) -> None:
    _CONNECTIONS[ctx] = Connection(send, partition_count)


def connection_of(ctx: Any) -> Connection:
    """The broker's connection; a partition used alone (tests) is its own message partition."""
    connection = _CONNECTIONS.get(ctx)
    if connection is None:
        raise RuntimeError("no broker is connected to deliver message commands")
    return connection


class MessageState:
    """Buffered messages, both kinds of subscriptions and the message-start locks."""

    def __init__(self) -> None:
        # ---- message partition side
        #: message key -> MESSAGE value (buffered: published, not yet expired)
        self.messages: dict[int, dict[str, Any]] = {}
        #: (name, correlation key) -> message keys in publishing order (FIFO, §5.2)
        self.messages_by_name: dict[tuple[str, str], dict[int, None]] = {}
        #: (name, correlation key, messageId) -> message key, while buffered
        self.message_ids: dict[tuple[str, str, str], int] = {}
        #: message key -> bpmnProcessIds it has correlated to (at most once per process id)
        self.correlated: dict[int, set[str]] = {}
        #: (deadline, message key) min-heap; stale entries are skipped
        self.deadline_heap: list[tuple[int, int]] = []
        #: (elementInstanceKey, messageName) -> MESSAGE_SUBSCRIPTION value + "key" + "correlating"
        self.subscriptions: dict[tuple[int, str], dict[str, Any]] = {}
        #: (name, correlation key) -> subscription ids, in opening order
        self.subscriptions_by_name: dict[tuple[str, str], dict[tuple[int, str], None]] = {}
        #: processDefinitionKey -> {startEventId: MESSAGE_START_EVENT_SUBSCRIPTION value}
        self.start_subscriptions: dict[int, dict[str, dict[str, Any]]] = {}
        #: (bpmnProcessId, correlation key) -> instance started by a message with that key (a
        #: lock while the instance is active, reference §5.2; stale entries are harmless)
        self.start_locks: dict[tuple[str, str], int] = {}
        # ---- process instance partition side
        #: (elementInstanceKey, messageName) -> {"key", "state", "value"}
        self.process_subscriptions: dict[tuple[int, str], dict[str, Any]] = {}
        #: elementInstanceKey -> its message names (derived)
        self.element_subscriptions: dict[int, dict[str, None]] = {}

    # ------------------------------------------------------------------ messages
    def add_message(self, key: int, value: dict[str, Any]) -> None:
        self.messages[key] = dict(value)
        name_key = (value["name"], value["correlationKey"])
        self.messages_by_name.setdefault(name_key, {})[key] = None
        if value.get("messageId"):
            self.message_ids[(value["name"], value["correlationKey"], value["messageId"])] = key
        heapq.heappush(self.deadline_heap, (int(value["deadline"]), key))

    def remove_message(self, key: int) -> None:
        value = self.messages.pop(key, None)
        self.correlated.pop(key, None)
        if value is None:
            return
        name_key = (value["name"], value["correlationKey"])
        queue = self.messages_by_name.get(name_key)
        if queue is not None:
            queue.pop(key, None)
            if not queue:
                del self.messages_by_name[name_key]
        id_key = (value["name"], value["correlationKey"], value.get("messageId", ""))
        if self.message_ids.get(id_key) == key:
            del self.message_ids[id_key]

    def buffered(self, name: str, correlation_key: str) -> list[int]:
        return list(self.messages_by_name.get((name, correlation_key), ()))

    def expired_messages(self, now: int, limit: int) -> list[int]:
        """Up to `limit` buffered message keys whose deadline has passed (popped)."""
        due: list[int] = []
        while self.deadline_heap and self.deadline_heap[0][0] <= now and len(due) < limit:
            deadline, key = heapq.heappop(self.deadline_heap)
            message = self.messages.get(key)
            if message is not None and int(message["deadline"]) == deadline:
                due.append(key)
        return due

    # ------------------------------------------------------------------ subscriptions
    def add_subscription(self, key: int, value: dict[str, Any]) -> None:
        ident = (int(value["elementInstanceKey"]), str(value["messageName"]))
        self.subscriptions[ident] = {**value, "key": key, "correlating": -1}
        name_key = (value["messageName"], value["correlationKey"])
        self.subscriptions_by_name.setdefault(name_key, {})[ident] = None

    def remove_subscription(self, ident: tuple[int, str]) -> None:
        subscription = self.subscriptions.pop(ident, None)
        if subscription is None:
            return
        name_key = (subscription["messageName"], subscription["correlationKey"])
        listed = self.subscriptions_by_name.get(name_key)
        if listed is not None:
            listed.pop(ident, None)
            if not listed:
                del self.subscriptions_by_name[name_key]

    def subscriptions_for(self, name: str, correlation_key: str) -> list[dict[str, Any]]:
        return [
            self.subscriptions[ident] for ident in self.subscriptions_by_name.get((name, correlation_key), ())
        ]

    def start_subscriptions_for(self, name: str) -> list[dict[str, Any]]:
        return [
            value
            for by_event in self.start_subscriptions.values()
            for value in by_event.values()
            if value["messageName"] == name
        ]

    def start_subscriptions_for_process(self, bpmn_process_id: str) -> list[dict[str, Any]]:
        return [
            value
            for by_event in self.start_subscriptions.values()
            for value in by_event.values()
            if value["bpmnProcessId"] == bpmn_process_id
        ]

    def put_process_subscription(self, entry: dict[str, Any]) -> None:
        value = entry["value"]
        element_instance_key, name = int(value["elementInstanceKey"]), str(value["messageName"])
        self.process_subscriptions[(element_instance_key, name)] = entry
        self.element_subscriptions.setdefault(element_instance_key, {})[name] = None

    def drop_process_subscription(self, ident: tuple[int, str]) -> None:
        self.process_subscriptions.pop(ident, None)
        names = self.element_subscriptions.get(ident[0])
        if names is not None:
            names.pop(ident[1], None)
            if not names:
                del self.element_subscriptions[ident[0]]

    def subscriptions_of_element(self, element_instance_key: int) -> list[dict[str, Any]]:
        return [
            self.process_subscriptions[(element_instance_key, name)]
            for name in self.element_subscriptions.get(element_instance_key, ())
        ]

    # ------------------------------------------------------------------ snapshots
    def to_snapshot(self, active_instances: Any) -> dict[str, Any]:
        return {
            "messages": [
                [key, value, sorted(self.correlated.get(key, ()))] for key, value in self.messages.items()
            ],
            "messageSubscriptions": [
                {k: v for k, v in value.items()} for value in self.subscriptions.values()
            ],
            "messageStartSubscriptions": [
                value for by_event in self.start_subscriptions.values() for value in by_event.values()
            ],
            # only locks still held: an ended instance holds none
            "messageStartLocks": [
                [process_id, correlation_key, instance_key]
                for (process_id, correlation_key), instance_key in self.start_locks.items()
                if instance_key in active_instances
            ],
            "processMessageSubscriptions": list(self.process_subscriptions.values()),
        }

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        for key, value, correlated in snapshot.get("messages", []):
            self.add_message(key, value)
            if correlated:
                self.correlated[key] = set(correlated)
        for value in snapshot.get("messageSubscriptions", []):
            entry = {k: v for k, v in value.items() if k not in ("key", "correlating")}
            self.add_subscription(value["key"], entry)
            self.subscriptions[(int(value["elementInstanceKey"]), str(value["messageName"]))][
                "correlating"
            ] = value.get("correlating", -1)
        for value in snapshot.get("messageStartSubscriptions", []):
            self.start_subscriptions.setdefault(int(value["processDefinitionKey"]), {})[
                value["startEventId"]
            ] = value
        for process_id, correlation_key, instance_key in snapshot.get("messageStartLocks", []):
            self.start_locks[(process_id, correlation_key)] = instance_key
        for entry in snapshot.get("processMessageSubscriptions", []):
            self.put_process_subscription(entry)
