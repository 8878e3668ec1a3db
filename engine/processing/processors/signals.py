"""SIGNAL BROADCAST (reference §1.3 BroadcastSignal, §3.4, §5.2): Zeebe's
SignalBroadcastProcessor. The broker runs the command on the deployment partition (partition
1, which gives the key) and then on every other partition with that key (Zeebe's command
distribution). Each writes SIGNAL BROADCASTED and triggers every subscription of the signal's
name it holds: catch events through the catch-event behaviour (interrupting or not), signal
start events (deployment partition only) by starting an instance at that start event with the
signal's variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.processing.command import Command
from engine.processing.context import ProcessingContext
from engine.processing.instances import start_process_instance
from engine.processing.registry import processor
from engine.processing.subscriptions import trigger


@dataclass(slots=True)
class BroadcastSignal:
    name: str
    variables: dict[str, Any]
    #: True on the partitions the broadcast is distributed to (the key is the first one's)
    distributed: bool = False


@processor("SIGNAL", "BROADCAST")
def broadcast(ctx: ProcessingContext, command: Command) -> int:
    request: BroadcastSignal = command.request
    key = command.key if request.distributed and command.key > 0 else ctx.state.new_key()
    ctx.emit("SIGNAL", "BROADCASTED", key, dict(command.value))
    signal_state = ctx.state.signal_state
    # Taken before any is triggered: a triggered catch event may close others (an interrupting
    # boundary ends its activity's other subscriptions), and new ones opened by what the
    # signal started do not catch this signal.
    for subscription_key in signal_state.named(request.name):
        value = signal_state.subscriptions.get(subscription_key)
        if value is None:
            continue  # closed by an earlier trigger of this broadcast
        process = ctx.state.processes.get(int(value["processDefinitionKey"]))
        if process is None:
            continue
        model = ctx.state.model(process.key)
        catch_event = model.elements_by_id.get(value["catchEventId"])
        if catch_event is None:
            continue
        owner_key = int(value["catchEventInstanceKey"])
        if owner_key <= 0:
            start_process_instance(
                ctx,
                process,
                model,
                ctx.state.new_key(),
                dict(request.variables),
                [],
                start_event=catch_event,
                write_creation=False,
            )
            continue
        owner = ctx.state.element_instances.get(owner_key)
        if owner is None or owner.state != "ELEMENT_ACTIVATED":
            continue
        trigger(ctx, owner_key, catch_event, dict(request.variables))
    return key
