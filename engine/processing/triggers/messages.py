"""Message catch events (reference §5.2 "Messages", §3.4/§3.5 records): intermediate message
catch events, receive tasks, message boundary events, message event sub-process starts, and
the message start events of a process; plus the appliers of the message record families.

Correlation runs over two partitions as in Zeebe. The *process instance partition* (P) owns
PROCESS_MESSAGE_SUBSCRIPTIONs, the *message partition* (M, the correlation key's hash §2.3)
owns MESSAGE_SUBSCRIPTIONs and the buffered MESSAGEs:

    P: PROCESS_MESSAGE_SUBSCRIPTION CREATING   --MESSAGE_SUBSCRIPTION CREATE-->  M: CREATED
    P: PROCESS_MESSAGE_SUBSCRIPTION CREATED    <--PROCESS_MESSAGE_SUBSCRIPTION CREATE--
    (a message published, or buffered when the subscription opened, FIFO)
                                               M: MESSAGE_SUBSCRIPTION CORRELATING
    P: PROCESS_MESSAGE_SUBSCRIPTION CORRELATED <--PROCESS_MESSAGE_SUBSCRIPTION CORRELATE--
       + the catch event is triggered          --MESSAGE_SUBSCRIPTION CORRELATE-->  M: CORRELATED
    (the owner leaves)
    P: PROCESS_MESSAGE_SUBSCRIPTION DELETING   --MESSAGE_SUBSCRIPTION DELETE-->  M: DELETED
    P: PROCESS_MESSAGE_SUBSCRIPTION DELETED    <--PROCESS_MESSAGE_SUBSCRIPTION DELETE--

A subscription whose owner is gone when the correlation arrives is refused (MESSAGE_SUBSCRIPTION
REJECT): the message becomes free again for that process. A message correlates at most once
per bpmnProcessId, to every process that has a matching subscription.

Message start events: MESSAGE_START_EVENT_SUBSCRIPTION CREATED on every partition for the
latest version of a process (DELETED for the versions it replaces). A published message starts
an instance of each process listening for its name, unless an instance started by a message
with the same non-empty correlation key is still active (the message then stays buffered
until that instance ends, if its time to live allows).
"""

from __future__ import annotations

from typing import Any

from engine.bpmn.model import EventType
from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.instances import start_process_instance
from engine.processing.message_state import MessageState, connection_of, subscription_partition_id
from engine.processing.registry import trigger_kind
from engine.processing.state import ElementInstance, PartitionState, register_applier
from engine.records import DEFAULT_TENANT, decode_partition
from engine.values import feel_type_name


def messages(state: PartitionState) -> MessageState:
    return state.message_state


def send(
    ctx: ProcessingContext, partition_id: int, value_type: str, intent: str, value: dict[str, Any]
) -> None:
    """Send a command to a partition once the current command has succeeded."""
    connection = connection_of(ctx)
    ctx.after_command.append(lambda: connection.send(partition_id, value_type, intent, value))


def message_partition(ctx: ProcessingContext, correlation_key: str) -> int:
    return subscription_partition_id(correlation_key, connection_of(ctx).partition_count)


# ---------------------------------------------------------------------- evaluation
def correlation_key_of(catch_event: Any, variables: dict[str, Any]) -> str:
    """The correlation key: a string, or a number as Zeebe prints it (its long value)."""
    expression = catch_event.message.correlation_key
    value = evaluate(expression, variables, "EXTRACT_VALUE_ERROR")
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value))
    raise MappingFailure(
        "EXTRACT_VALUE_ERROR",
        f"Failed to extract the correlation key for '{expression.text.strip()}': The value must be either a string "
        f"or a number, but was '{feel_type_name(value)}'.",
    )


def message_name_of(catch_event: Any, variables: dict[str, Any]) -> str:
    expression = catch_event.message.name
    value = evaluate(expression, variables, "EXTRACT_VALUE_ERROR")
    if not isinstance(value, str):
        raise MappingFailure(
            "EXTRACT_VALUE_ERROR",
            f"Expected result of the expression '{expression.text}' to be 'STRING', "
            f"but was '{feel_type_name(value)}'.",
        )
    return value


def subscription_value(
    owner: ElementInstance, catch_event: Any, name: str, correlation_key: str
) -> dict[str, Any]:
    """The PROCESS_MESSAGE_SUBSCRIPTION value (reference §3.4)."""
    interrupting = (
        bool(catch_event.cancel_activity)
        if catch_event.element_type.value == "BOUNDARY_EVENT"
        else bool(getattr(catch_event, "interrupting", True))
    )
    return {
        "processInstanceKey": owner.process_instance_key,
        "elementInstanceKey": owner.key,
        "messageName": name,
        "variables": {},
        "bpmnProcessId": owner.bpmn_process_id,
        "messageKey": -1,
        "correlationKey": correlation_key,
        "elementId": catch_event.id,
        "interrupting": interrupting,
        "tenantId": owner.tenant_id,
    }


def message_subscription_value(value: dict[str, Any]) -> dict[str, Any]:
    """The MESSAGE_SUBSCRIPTION value of a PROCESS_MESSAGE_SUBSCRIPTION value (§3.4)."""
    return {
        "processInstanceKey": value["processInstanceKey"],
        "elementInstanceKey": value["elementInstanceKey"],
        "messageName": value["messageName"],
        "correlationKey": value["correlationKey"],
        "bpmnProcessId": value["bpmnProcessId"],
        "messageKey": value.get("messageKey", -1),
        "variables": value.get("variables", {}),
        "interrupting": value["interrupting"],
        "tenantId": value.get("tenantId", DEFAULT_TENANT),
    }


# ---------------------------------------------------------------------- the trigger kind
@trigger_kind("MESSAGE")
class MessageTrigger:
    def evaluate(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> tuple[str, str]:
        variables = ctx.state.visible_variables(owner.key)
        return message_name_of(catch_event, variables), correlation_key_of(catch_event, variables)

    def open(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any, evaluated: Any) -> None:
        name, correlation_key = evaluated
        open_subscription(ctx, owner, catch_event, name, correlation_key)

    def close(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> None:
        state = messages(ctx.state)
        for entry in state.subscriptions_of_element(owner.key):
            if entry["value"]["elementId"] != catch_event.id:
                continue
            if entry["state"] == "DELETING":
                continue
            value = dict(entry["value"])
            ctx.emit("PROCESS_MESSAGE_SUBSCRIPTION", "DELETING", entry["key"], value)
            send(
                ctx,
                message_partition(ctx, value["correlationKey"]),
                "MESSAGE_SUBSCRIPTION",
                "DELETE",
                message_subscription_value(value),
            )


def open_subscription(
    ctx: ProcessingContext, owner: ElementInstance, catch_event: Any, name: str, correlation_key: str
) -> None:
    value = subscription_value(owner, catch_event, name, correlation_key)
    ctx.emit("PROCESS_MESSAGE_SUBSCRIPTION", "CREATING", ctx.state.new_key(), value)
    send(
        ctx,
        message_partition(ctx, correlation_key),
        "MESSAGE_SUBSCRIPTION",
        "CREATE",
        message_subscription_value(value),
    )


# ---------------------------------------------------------------------- message partition side
def correlate_to_subscription(ctx: ProcessingContext, subscription: dict[str, Any], message_key: int) -> None:
    """MESSAGE_SUBSCRIPTION CORRELATING, and the correlation sent to the instance's partition."""
    message = messages(ctx.state).messages[message_key]
    value = message_subscription_value(subscription)
    value["messageKey"] = message_key
    value["variables"] = dict(message["variables"])
    ctx.emit("MESSAGE_SUBSCRIPTION", "CORRELATING", subscription["key"], value)
    send(
        ctx,
        decode_partition(int(subscription["elementInstanceKey"])),
        "PROCESS_MESSAGE_SUBSCRIPTION",
        "CORRELATE",
        value,
    )


def correlate_buffered(ctx: ProcessingContext, subscription: dict[str, Any]) -> bool:
    """Correlate the oldest buffered message the subscription may take (FIFO, §5.2)."""
    state = messages(ctx.state)
    process_id = subscription["bpmnProcessId"]
    now = ctx.now()
    for message_key in state.buffered(subscription["messageName"], subscription["correlationKey"]):
        message = state.messages[message_key]
        if process_id in state.correlated.get(message_key, ()) or int(message["deadline"]) < now:
            continue
        correlate_to_subscription(ctx, subscription, message_key)
        return True
    return False


def correlate_message(ctx: ProcessingContext, message_key: int) -> None:
    """A message just published (or freed by a rejection): every process with a matching
    subscription gets it once, then the message start events."""
    state = messages(ctx.state)
    message = state.messages.get(message_key)
    if message is None:
        return
    name, correlation_key = message["name"], message["correlationKey"]
    for subscription in state.subscriptions_for(name, correlation_key):
        if subscription["correlating"] != -1:
            continue  # busy with another message until the instance's partition answers
        if subscription["bpmnProcessId"] in state.correlated.get(message_key, ()):
            continue
        correlate_to_subscription(ctx, subscription, message_key)
    correlate_start_events(ctx, message_key)


def correlate_start_events(ctx: ProcessingContext, message_key: int, only_process: str | None = None) -> None:
    state = messages(ctx.state)
    message = state.messages[message_key]
    correlation_key = message["correlationKey"]
    for start in state.start_subscriptions_for(message["name"]):
        process_id = start["bpmnProcessId"]
        if only_process is not None and process_id != only_process:
            continue
        if process_id in state.correlated.get(message_key, ()):
            continue
        if correlation_key:
            holder = state.start_locks.get((process_id, correlation_key))
            if holder is not None and holder in ctx.state.element_instances:
                continue  # one active instance per correlation key (§5.2): stays buffered
        start_instance(ctx, start, message_key)


def start_instance(ctx: ProcessingContext, start: dict[str, Any], message_key: int) -> int | None:
    message = messages(ctx.state).messages[message_key]
    process = ctx.state.processes.get(int(start["processDefinitionKey"]))
    if process is None:
        return None
    model = ctx.state.model(process.key)
    start_event = model.elements_by_id.get(start["startEventId"])
    if start_event is None:
        return None
    instance_key = ctx.state.new_key()
    value = dict(start)
    value.update(
        processInstanceKey=instance_key,
        messageKey=message_key,
        correlationKey=message["correlationKey"],
        variables=dict(message["variables"]),
    )
    ctx.emit("MESSAGE_START_EVENT_SUBSCRIPTION", "CORRELATED", ctx.state.new_key(), value)
    start_process_instance(
        ctx,
        process,
        model,
        instance_key,
        dict(message["variables"]),
        [],
        start_event=start_event,
        write_creation=False,
    )
    return instance_key


def open_start_subscriptions(ctx: ProcessingContext, new_processes: list[dict[str, Any]]) -> None:
    """Deployment (on every partition): the latest version of a process listens for its
    message start events, the versions it replaces no longer do (reference §5.2)."""
    state = messages(ctx.state)
    for value in new_processes:
        process_id = value["bpmnProcessId"]
        definition_key = int(value["processDefinitionKey"])
        if definition_key in state.start_subscriptions:
            continue  # already written (a redistribution)
        for older_key, by_event in list(state.start_subscriptions.items()):
            if older_key == definition_key:
                continue
            for start in list(by_event.values()):
                if start["bpmnProcessId"] == process_id:
                    ctx.emit("MESSAGE_START_EVENT_SUBSCRIPTION", "DELETED", ctx.state.new_key(), dict(start))
        model = ctx.state.model(definition_key)
        for start_event in model.start_events_of(EventType.MESSAGE):
            name = start_event.message.name.evaluate({})  # validated at deploy: a string
            ctx.emit(
                "MESSAGE_START_EVENT_SUBSCRIPTION",
                "CREATED",
                ctx.state.new_key(),
                {
                    "processDefinitionKey": definition_key,
                    "messageName": str(name),
                    "startEventId": start_event.id,
                    "bpmnProcessId": process_id,
                    "processInstanceKey": -1,
                    "messageKey": -1,
                    "correlationKey": "",
                    "variables": {},
                    "tenantId": value.get("tenantId", DEFAULT_TENANT),
                },
            )


# ---------------------------------------------------------------------- appliers
@register_applier("MESSAGE", "PUBLISHED")
def _message_published(state: PartitionState, record: dict[str, Any]) -> None:
    messages(state).add_message(record["key"], record["value"])


@register_applier("MESSAGE", "EXPIRED")
def _message_expired(state: PartitionState, record: dict[str, Any]) -> None:
    messages(state).remove_message(record["key"])


@register_applier("MESSAGE_SUBSCRIPTION", "CREATED")
def _subscription_created(state: PartitionState, record: dict[str, Any]) -> None:
    messages(state).add_subscription(record["key"], record["value"])


def _ident(value: dict[str, Any]) -> tuple[int, str]:
    return int(value["elementInstanceKey"]), str(value["messageName"])


@register_applier("MESSAGE_SUBSCRIPTION", "CORRELATING")
def _subscription_correlating(state: PartitionState, record: dict[str, Any]) -> None:
    message_state = messages(state)
    value = record["value"]
    subscription = message_state.subscriptions.get(_ident(value))
    if subscription is not None:
        subscription["correlating"] = int(value["messageKey"])
    message_key = int(value["messageKey"])
    if message_key in message_state.messages:
        message_state.correlated.setdefault(message_key, set()).add(value["bpmnProcessId"])


@register_applier("MESSAGE_SUBSCRIPTION", "CORRELATED")
def _subscription_correlated(state: PartitionState, record: dict[str, Any]) -> None:
    message_state = messages(state)
    ident = _ident(record["value"])
    subscription = message_state.subscriptions.get(ident)
    if subscription is None:
        return
    if subscription["interrupting"]:
        message_state.remove_subscription(ident)
    else:
        subscription["correlating"] = -1


@register_applier("MESSAGE_SUBSCRIPTION", "REJECTED")
def _subscription_rejected(state: PartitionState, record: dict[str, Any]) -> None:
    message_state = messages(state)
    value = record["value"]
    subscription = message_state.subscriptions.get(_ident(value))
    if subscription is not None and subscription["correlating"] == int(value["messageKey"]):
        subscription["correlating"] = -1
    correlated = message_state.correlated.get(int(value["messageKey"]))
    if correlated is not None:
        correlated.discard(value["bpmnProcessId"])


@register_applier("MESSAGE_SUBSCRIPTION", "DELETED")
def _subscription_deleted(state: PartitionState, record: dict[str, Any]) -> None:
    messages(state).remove_subscription(_ident(record["value"]))


@register_applier("PROCESS_MESSAGE_SUBSCRIPTION", "CREATING")
def _process_subscription_creating(state: PartitionState, record: dict[str, Any]) -> None:
    value = dict(record["value"])
    messages(state).put_process_subscription({"key": record["key"], "state": "CREATING", "value": value})


@register_applier("PROCESS_MESSAGE_SUBSCRIPTION", "CREATED", "DELETING")
def _process_subscription_state(state: PartitionState, record: dict[str, Any]) -> None:
    entry = messages(state).process_subscriptions.get(_ident(record["value"]))
    if entry is not None:
        entry["state"] = record["intent"]


@register_applier("PROCESS_MESSAGE_SUBSCRIPTION", "CORRELATED")
def _process_subscription_correlated(state: PartitionState, record: dict[str, Any]) -> None:
    ident = _ident(record["value"])
    entry = messages(state).process_subscriptions.get(ident)
    if entry is not None and entry["value"]["interrupting"]:
        messages(state).drop_process_subscription(ident)


@register_applier("PROCESS_MESSAGE_SUBSCRIPTION", "DELETED")
def _process_subscription_deleted(state: PartitionState, record: dict[str, Any]) -> None:
    messages(state).drop_process_subscription(_ident(record["value"]))


@register_applier("MESSAGE_START_EVENT_SUBSCRIPTION", "CREATED")
def _start_subscription_created(state: PartitionState, record: dict[str, Any]) -> None:
    value = dict(record["value"])
    messages(state).start_subscriptions.setdefault(int(value["processDefinitionKey"]), {})[
        value["startEventId"]
    ] = value


@register_applier("MESSAGE_START_EVENT_SUBSCRIPTION", "DELETED")
def _start_subscription_deleted(state: PartitionState, record: dict[str, Any]) -> None:
    value = record["value"]
    by_event = messages(state).start_subscriptions.get(int(value["processDefinitionKey"]))
    if by_event is not None:
        by_event.pop(value["startEventId"], None)
        if not by_event:
            del messages(state).start_subscriptions[int(value["processDefinitionKey"])]


@register_applier("MESSAGE_START_EVENT_SUBSCRIPTION", "CORRELATED")
def _start_subscription_correlated(state: PartitionState, record: dict[str, Any]) -> None:
    value = record["value"]
    message_state = messages(state)
    message_key = int(value["messageKey"])
    if message_key in message_state.messages:
        message_state.correlated.setdefault(message_key, set()).add(value["bpmnProcessId"])
    if value["correlationKey"]:
        message_state.start_locks[(value["bpmnProcessId"], value["correlationKey"])] = int(
            value["processInstanceKey"]
        )
