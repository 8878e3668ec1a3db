"""The SIGNAL trigger kind (reference §3.4-3.5, §5.2): signal catch events listen through a
SIGNAL_SUBSCRIPTION (CREATED when the owner activates, DELETED when it leaves), signal start
events through one per start event of the latest process version (on the deployment
partition). A broadcast (processors/signals.py) triggers every subscription of its name.

Signal names are literal or FEEL: a catch event's name is evaluated in its owner's scope when
it opens (a failure is an EXTRACT_VALUE_ERROR incident); a start event's at deployment, without
variables, as Zeebe does.

A broadcast (`broadcast`, run by processors/signals.py for SIGNAL BROADCAST) writes SIGNAL
BROADCASTED and triggers the partition's subscriptions of its name; its applier keeps the
distribution state (signal_state.py): an own broadcast is remembered until every partition has
it, and the broker is asked to distribute it once the command is done.

Throwing (intermediate throw and end events) writes, as Zeebe's BpmnSignalBehavior, a follow-up
SIGNAL BROADCAST command on the throwing partition, in the throwing command's batch: the thrown
signal is durable exactly when the throw is, the throwing partition is the broadcast's origin
(its key names it), and a crash at any later point only delays the distribution (`throw_signal`).
"""

from __future__ import annotations

from typing import Any

from engine.bpmn.model import EventType
from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.instances import start_process_instance
from engine.processing.registry import trigger_kind
from engine.processing.signal_state import distributor_of
from engine.processing.state import ElementInstance, PartitionState, register_applier
from engine.processing.subscriptions import trigger
from engine.records import DEFAULT_TENANT, decode_partition
from engine.values import feel_type_name


def signal_value(name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """SIGNAL value (reference §3.4)."""
    return {"signalName": name, "variables": variables, "tenantId": DEFAULT_TENANT}


def subscription_value(
    *,
    process_definition_key: int,
    bpmn_process_id: str,
    catch_event_id: str,
    catch_event_instance_key: int,
    signal_name: str,
) -> dict[str, Any]:
    """SIGNAL_SUBSCRIPTION value (reference §3.5); instance key -1 for a start event."""
    return {
        "processDefinitionKey": process_definition_key,
        "bpmnProcessId": bpmn_process_id,
        "catchEventId": catch_event_id,
        "catchEventInstanceKey": catch_event_instance_key,
        "signalName": signal_name,
        "tenantId": DEFAULT_TENANT,
    }


def signal_name_of(event: Any, variables: dict[str, Any]) -> str:
    """The (literal or FEEL) signal name of a signal event; `MappingFailure` if it is not a string."""
    definition = event.signal
    if definition is None:
        raise MappingFailure("EXTRACT_VALUE_ERROR", f"The signal event '{event.id}' has no signal definition")
    name = evaluate(definition.name, variables, "EXTRACT_VALUE_ERROR")
    if not isinstance(name, str):
        raise MappingFailure(
            "EXTRACT_VALUE_ERROR",
            f"Expected result of the expression '{definition.name.text}' to be 'STRING', "
            f"but was '{feel_type_name(name)}'.",
        )
    return name


@trigger_kind("SIGNAL")
class SignalTrigger:
    def evaluate(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> str:
        return signal_name_of(catch_event, ctx.state.visible_variables(owner.key))

    def open(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any, evaluated: Any) -> None:
        ctx.emit(
            "SIGNAL_SUBSCRIPTION",
            "CREATED",
            ctx.state.new_key(),
            subscription_value(
                process_definition_key=owner.process_definition_key,
                bpmn_process_id=owner.bpmn_process_id,
                catch_event_id=catch_event.id,
                catch_event_instance_key=owner.key,
                signal_name=evaluated,
            ),
        )

    def close(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> None:
        signal_state = ctx.state.signal_state
        for key in signal_state.of_owner(owner.key):
            value = signal_state.subscriptions.get(key)
            if value is not None and value["catchEventId"] == catch_event.id:
                ctx.emit("SIGNAL_SUBSCRIPTION", "DELETED", key, dict(value))


def open_start_subscriptions(ctx: ProcessingContext, new_processes: list[dict[str, Any]]) -> None:
    """At deployment (deployment partition): a new process version's signal start events
    subscribe, and the previous version's stop listening (only the latest version starts)."""
    for value in new_processes:
        process_id = value["bpmnProcessId"]
        model = ctx.state.model(value["processDefinitionKey"])
        for older in ctx.state.process_versions.get(process_id, {}).values():
            if older == value["processDefinitionKey"]:
                continue
            for key in ctx.state.signal_state.start_subscriptions(older):
                ctx.emit(
                    "SIGNAL_SUBSCRIPTION", "DELETED", key, dict(ctx.state.signal_state.subscriptions[key])
                )
        for start in model.start_events_of(EventType.SIGNAL):
            # validated at deploy: a start event's name evaluates without variables
            name = signal_name_of(start, {})
            ctx.emit(
                "SIGNAL_SUBSCRIPTION",
                "CREATED",
                ctx.state.new_key(),
                subscription_value(
                    process_definition_key=value["processDefinitionKey"],
                    bpmn_process_id=process_id,
                    catch_event_id=start.id,
                    catch_event_instance_key=-1,
                    signal_name=name,
                ),
            )


def broadcast(ctx: ProcessingContext, key: int, value: dict[str, Any], *, distributed: bool) -> None:
    """SIGNAL BROADCASTED under `key` and trigger every subscription of the signal's name held
    here: catch events through the catch-event behaviour (interrupting or not), signal start
    events (deployment partition only) by starting an instance at that start event with the
    signal's variables. An own broadcast (not `distributed`) is distributed by the broker to
    every other partition once the command is done."""
    ctx.emit("SIGNAL", "BROADCASTED", key, dict(value))
    variables = value["variables"]
    signal_state = ctx.state.signal_state
    # Taken before any is triggered: a triggered catch event may close others (an interrupting
    # boundary ends its activity's other subscriptions), and new ones opened by what the
    # signal started do not catch this signal.
    for subscription_key in signal_state.named(value["signalName"]):
        subscription = signal_state.subscriptions.get(subscription_key)
        if subscription is None:
            continue  # closed by an earlier trigger of this broadcast
        process = ctx.state.processes.get(int(subscription["processDefinitionKey"]))
        if process is None:
            continue
        model = ctx.state.model(process.key)
        catch_event = model.elements_by_id.get(subscription["catchEventId"])
        if catch_event is None:
            continue
        owner_key = int(subscription["catchEventInstanceKey"])
        if owner_key <= 0:
            start_process_instance(
                ctx,
                process,
                model,
                ctx.state.new_key(),
                dict(variables),
                [],
                start_event=catch_event,
                write_creation=False,
            )
            continue
        owner = ctx.state.element_instances.get(owner_key)
        if owner is None or owner.state != "ELEMENT_ACTIVATED":
            continue
        trigger(ctx, owner_key, catch_event, dict(variables))
    distribute = distributor_of(ctx)
    if not distributed and distribute is not None:
        origin_partition_id = ctx.partition_id
        ctx.after_command.append(lambda: distribute(origin_partition_id))


def throw_signal(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    """A signal intermediate throw or end event: evaluate the name now (an incident if it
    fails) and write Zeebe's follow-up SIGNAL BROADCAST command (a key of its own; the
    broadcast takes another, as in Zeebe's SignalBroadcastProcessor). Like Zeebe's
    BpmnSignalBehavior, the signal carries the throw event's local variables (what its input
    mappings made)."""
    name = signal_name_of(element, ctx.state.visible_variables(instance.key))
    value = signal_value(name, ctx.state.local_variables(instance.key))
    ctx.follow_up_command(
        "SIGNAL",
        "BROADCAST",
        ctx.state.new_key(),
        value,
        lambda: broadcast(ctx, ctx.state.new_key(), value, distributed=False),
    )


@register_applier("SIGNAL", "BROADCASTED")
def _broadcasted(state: PartitionState, record: dict[str, Any]) -> None:
    """The distribution state (signal_state.py): the origin's key names the origin partition."""
    key = record["key"]
    origin = decode_partition(key)
    signal_state = state.signal_state
    if origin == state.partition_id:
        signal_state.undistributed[key] = record["value"]
    elif key > signal_state.received.get(origin, 0):
        signal_state.received[origin] = key


@register_applier("SIGNAL_SUBSCRIPTION", "CREATED")
def _subscription_created(state: PartitionState, record: dict[str, Any]) -> None:
    state.signal_state.add(record["key"], record["value"])


@register_applier("SIGNAL_SUBSCRIPTION", "DELETED")
def _subscription_deleted(state: PartitionState, record: dict[str, Any]) -> None:
    state.signal_state.remove(record["key"])
