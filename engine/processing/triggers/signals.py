"""The SIGNAL trigger kind (reference §3.4-3.5, §5.2): signal catch events listen through a
SIGNAL_SUBSCRIPTION (CREATED when the owner activates, DELETED when it leaves), signal start
events through one per start event of the latest process version (on the deployment
partition). A broadcast (processors/signals.py) triggers every subscription of its name.

Signal names are literal or FEEL: a catch event's name is evaluated in its owner's scope when
it opens (a failure is an EXTRACT_VALUE_ERROR incident); a start event's at deployment, without
variables, as Zeebe does. Throwing (intermediate throw and end events) asks for a broadcast to
every partition after the throwing command (`throw_signal`).
"""

from __future__ import annotations

from typing import Any

from engine.bpmn.model import EventType
from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.registry import trigger_kind
from engine.processing.signal_state import broadcaster_of
from engine.processing.state import ElementInstance, PartitionState, register_applier
from engine.records import DEFAULT_TENANT
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


def throw_signal(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    """A signal intermediate throw or end event: evaluate the name now (an incident if it
    fails) and broadcast to every partition once the throwing command is done, as Zeebe's
    follow-up SIGNAL BROADCAST command. Like Zeebe's BpmnSignalBehavior, the signal carries the
    throw event's local variables (what its input mappings made)."""
    name = signal_name_of(element, ctx.state.visible_variables(instance.key))
    variables = ctx.state.local_variables(instance.key)
    broadcast = broadcaster_of(ctx)
    if broadcast is not None:
        ctx.after_command.append(lambda: broadcast(name, variables))


@register_applier("SIGNAL_SUBSCRIPTION", "CREATED")
def _subscription_created(state: PartitionState, record: dict[str, Any]) -> None:
    state.signal_state.add(record["key"], record["value"])


@register_applier("SIGNAL_SUBSCRIPTION", "DELETED")
def _subscription_deleted(state: PartitionState, record: dict[str, Any]) -> None:
    state.signal_state.remove(record["key"])
