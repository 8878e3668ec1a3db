"""Message commands (reference §1.3 PublishMessage, §3.5 intents, §5.2 "Messages").

On the message partition (the correlation key's hash, §2.3):
- MESSAGE PUBLISH (PublishMessage): PUBLISHED, correlated to every process with a matching
  subscription (once per bpmnProcessId) and to message start events; buffered for its time to
  live (a zero TTL expires at once); `messageId` unique among the buffered messages of its
  name and correlation key (ALREADY_EXISTS with Zeebe's text);
- MESSAGE EXPIRE (the broker's loop, once the TTL passed): EXPIRED;
- MESSAGE_SUBSCRIPTION CREATE / DELETE / CORRELATE / REJECT, sent by the instance's partition;
- MESSAGE CORRELATE_START (the broker's loop, not logged): a message-started instance ended,
  so a buffered message with its correlation key may start the next one.
On the process instance partition:
- PROCESS_MESSAGE_SUBSCRIPTION CREATE / CORRELATE / DELETE, sent by the message partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.message_state import connection_of
from engine.processing.registry import processor
from engine.processing.subscriptions import trigger
from engine.processing.triggers.messages import (
    correlate_buffered,
    correlate_message,
    correlate_start_events,
    correlate_to_subscription,
    message_partition,
    message_subscription_value,
    messages,
    send,
)
from engine.records import ALREADY_EXISTS, DEFAULT_TENANT, INVALID_STATE, NOT_FOUND, decode_partition


@dataclass(slots=True)
class PublishMessage:
    name: str
    correlation_key: str
    time_to_live: int
    message_id: str
    variables: dict[str, Any]


def publish_command_value(request: PublishMessage) -> dict[str, Any]:
    """The MESSAGE value of a publish (reference §3.4; the deadline is set when published)."""
    return {
        "name": request.name,
        "correlationKey": request.correlation_key,
        "timeToLive": request.time_to_live,
        "deadline": -1,
        "variables": request.variables,
        "messageId": request.message_id,
        "tenantId": DEFAULT_TENANT,
    }


@processor("MESSAGE", "PUBLISH")
def publish(ctx: ProcessingContext, command: Command) -> int:
    request = command.request
    assert isinstance(request, PublishMessage)
    state = messages(ctx.state)
    if (
        request.message_id
        and (request.name, request.correlation_key, request.message_id) in state.message_ids
    ):
        raise Rejection(
            "PUBLISH",
            ALREADY_EXISTS,
            f"Expected to publish a new message with id '{request.message_id}', but a message with that "
            f"id was already published",
        )
    key = ctx.state.new_key()
    time_to_live = max(0, request.time_to_live)
    value = publish_command_value(request)
    value["timeToLive"] = time_to_live
    value["deadline"] = ctx.now() + time_to_live
    ctx.emit("MESSAGE", "PUBLISHED", key, value)
    correlate_message(ctx, key)
    if time_to_live == 0:
        # not buffered: it cannot correlate again (Zeebe writes EXPIRED at once)
        ctx.emit("MESSAGE", "EXPIRED", key, value)
    return key


@processor("MESSAGE", "EXPIRE")
def expire(ctx: ProcessingContext, command: Command) -> bool:
    message = messages(ctx.state).messages.get(command.key)
    if message is None:
        raise Rejection(
            "EXPIRE",
            NOT_FOUND,
            f"Expected to expire message with key '{command.key}', but no such message was found",
        )
    if int(message["deadline"]) > ctx.now():
        return False
    ctx.emit("MESSAGE", "EXPIRED", command.key, dict(message))
    return True


@processor("MESSAGE", "CORRELATE_START")
def correlate_start(ctx: ProcessingContext, command: Command) -> int:
    """The instance holding the start lock of (bpmnProcessId, correlationKey) has ended: the
    oldest buffered message with that key starts the next one (reference §5.2)."""
    state = messages(ctx.state)
    process_id, correlation_key = command.value["bpmnProcessId"], command.value["correlationKey"]
    holder = state.start_locks.get((process_id, correlation_key))
    if holder is not None and holder in ctx.state.element_instances:
        return 0
    names = {start["messageName"] for start in state.start_subscriptions_for_process(process_id)}
    for name in sorted(names):
        for message_key in state.buffered(name, correlation_key):
            if process_id in state.correlated.get(message_key, ()):
                continue
            if int(state.messages[message_key]["deadline"]) < ctx.now():
                continue
            correlate_start_events(ctx, message_key, only_process=process_id)
            return 1
    return 0


# ---------------------------------------------------------------------- message partition
def _subscription_ident(value: dict[str, Any]) -> tuple[int, str]:
    return int(value["elementInstanceKey"]), str(value["messageName"])


@processor("MESSAGE_SUBSCRIPTION", "CREATE")
def create_subscription(ctx: ProcessingContext, command: Command) -> None:
    value = message_subscription_value(command.value)
    state = messages(ctx.state)
    ident = _subscription_ident(value)
    process_partition = decode_partition(ident[0])
    if ident not in state.subscriptions:
        ctx.emit("MESSAGE_SUBSCRIPTION", "CREATED", ctx.state.new_key(), value)
    # acknowledged again for a repeated CREATE (sent again after a restart)
    send(ctx, process_partition, "PROCESS_MESSAGE_SUBSCRIPTION", "CREATE", value)
    subscription = state.subscriptions[ident]
    if subscription["correlating"] == -1:
        correlate_buffered(ctx, subscription)


@processor("MESSAGE_SUBSCRIPTION", "DELETE")
def delete_subscription(ctx: ProcessingContext, command: Command) -> None:
    value = message_subscription_value(command.value)
    state = messages(ctx.state)
    subscription = state.subscriptions.get(_subscription_ident(value))
    if subscription is not None:
        ctx.emit(
            "MESSAGE_SUBSCRIPTION", "DELETED", subscription["key"], message_subscription_value(subscription)
        )
    send(
        ctx,
        decode_partition(int(value["elementInstanceKey"])),
        "PROCESS_MESSAGE_SUBSCRIPTION",
        "DELETE",
        value,
    )


@processor("MESSAGE_SUBSCRIPTION", "CORRELATE")
def subscription_correlated(ctx: ProcessingContext, command: Command) -> None:
    """The instance's partition correlated the message."""
    value = command.value
    state = messages(ctx.state)
    subscription = state.subscriptions.get(_subscription_ident(value))
    if subscription is None:
        return  # deleted meanwhile (an interrupting one is removed when correlated)
    ctx.emit("MESSAGE_SUBSCRIPTION", "CORRELATED", subscription["key"], dict(value))
    if not subscription["interrupting"] and _subscription_ident(value) in state.subscriptions:
        # still listening: the next buffered message it has not taken yet
        correlate_buffered(ctx, state.subscriptions[_subscription_ident(value)])


@processor("MESSAGE_SUBSCRIPTION", "REJECT")
def subscription_rejected(ctx: ProcessingContext, command: Command) -> None:
    """The instance's partition could not correlate (its element left): the message is free
    again for that process, and goes to another of its subscriptions if there is one."""
    value = command.value
    state = messages(ctx.state)
    subscription = state.subscriptions.get(_subscription_ident(value))
    key = subscription["key"] if subscription is not None else -1
    ctx.emit("MESSAGE_SUBSCRIPTION", "REJECTED", key, dict(value))
    message_key = int(value["messageKey"])
    if message_key in state.messages:
        for other in state.subscriptions_for(value["messageName"], value["correlationKey"]):
            if (
                other["bpmnProcessId"] == value["bpmnProcessId"]
                and other["correlating"] == -1
                and _subscription_ident(other) != _subscription_ident(value)
            ):
                correlate_to_subscription(ctx, other, message_key)
                break


# ---------------------------------------------------------------------- instance partition
@processor("PROCESS_MESSAGE_SUBSCRIPTION", "CREATE")
def process_subscription_created(ctx: ProcessingContext, command: Command) -> None:
    entry = messages(ctx.state).process_subscriptions.get(_subscription_ident(command.value))
    if entry is not None and entry["state"] == "CREATING":
        ctx.emit("PROCESS_MESSAGE_SUBSCRIPTION", "CREATED", entry["key"], dict(entry["value"]))


@processor("PROCESS_MESSAGE_SUBSCRIPTION", "DELETE")
def process_subscription_deleted(ctx: ProcessingContext, command: Command) -> None:
    entry = messages(ctx.state).process_subscriptions.get(_subscription_ident(command.value))
    if entry is not None and entry["state"] == "DELETING":
        ctx.emit("PROCESS_MESSAGE_SUBSCRIPTION", "DELETED", entry["key"], dict(entry["value"]))


@processor("PROCESS_MESSAGE_SUBSCRIPTION", "CORRELATE")
def process_subscription_correlate(ctx: ProcessingContext, command: Command) -> None:
    value = command.value
    ident = _subscription_ident(value)
    entry = messages(ctx.state).process_subscriptions.get(ident)
    owner = ctx.state.element_instances.get(ident[0])
    if entry is None or entry["state"] == "DELETING" or owner is None or owner.state != "ELEMENT_ACTIVATED":
        # the element left (or is leaving): the message is free again for this process
        reject = message_subscription_value(value)
        # sent although the command is rejected (delivery is queued on the event loop)
        connection_of(ctx).send(
            message_partition(ctx, value["correlationKey"]), "MESSAGE_SUBSCRIPTION", "REJECT", reject
        )
        raise Rejection(
            "CORRELATE",
            INVALID_STATE,
            f"Expected to correlate subscription for element with key '{ident[0]}' and message name "
            f"'{ident[1]}', but no such subscription was found",
        )
    correlated = dict(entry["value"])
    correlated["messageKey"] = int(value["messageKey"])
    correlated["variables"] = dict(value.get("variables", {}))
    ctx.emit("PROCESS_MESSAGE_SUBSCRIPTION", "CORRELATED", entry["key"], correlated)
    catch_event = ctx.state.model(owner.process_definition_key).elements_by_id[correlated["elementId"]]
    trigger(ctx, owner.key, catch_event, correlated["variables"])
    send(
        ctx,
        message_partition(ctx, correlated["correlationKey"]),
        "MESSAGE_SUBSCRIPTION",
        "CORRELATE",
        message_subscription_value(correlated),
    )
