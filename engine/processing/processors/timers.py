"""TIMER TRIGGER: a due timer fires (written by the broker's timer loop).

Zeebe's TimerTriggerProcessor: TIMER TRIGGERED, then what the timer starts, then the next
repetition of a cycle. A timer start event creates a process instance at that start event;
any other timer triggers its catch event through the catch-event behaviour (interrupting a
boundary's activity or not, completing an intermediate catch event, starting an event
sub-process).
"""

from __future__ import annotations

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.instances import start_process_instance
from engine.processing.registry import processor
from engine.processing.subscriptions import trigger
from engine.processing.triggers.timers import rearm_after
from engine.records import INVALID_STATE, NOT_FOUND


@processor("TIMER", "TRIGGER")
def trigger_timer(ctx: ProcessingContext, command: Command) -> bool:
    timer_key = command.key
    timer = ctx.state.timers.get(timer_key)
    if timer is None:
        raise Rejection(
            "TRIGGER",
            NOT_FOUND,
            f"Expected to trigger timer with key '{timer_key}', but no such timer was found",
        )
    if timer.due_date > ctx.now():
        return False  # never early (reference §5.2)
    process = ctx.state.processes.get(int(timer.value["processDefinitionKey"]))
    if process is None:
        raise Rejection(
            "TRIGGER",
            NOT_FOUND,
            f"Expected to trigger timer with key '{timer_key}', but its process definition "
            f"'{timer.value['processDefinitionKey']}' was not found",
        )
    model = ctx.state.model(process.key)
    catch_event = model.elements_by_id.get(timer.value["targetElementId"])
    owner_key = timer.element_instance_key
    owner = ctx.state.element_instances.get(owner_key) if owner_key > 0 else None
    if catch_event is None or (owner_key > 0 and (owner is None or owner.state != "ELEMENT_ACTIVATED")):
        raise Rejection(
            "TRIGGER",
            INVALID_STATE,
            f"Expected to trigger timer with key '{timer_key}', but its element instance is not active",
        )
    ctx.emit("TIMER", "TRIGGERED", timer_key, dict(timer.value))
    if owner is None:
        # a timer start event of the process: a new instance starts there
        key = ctx.state.new_key()
        start_process_instance(
            ctx, process, model, key, {}, [], start_event=catch_event, write_creation=False
        )
        rearm_after(ctx, timer, catch_event, {})
        return True
    variables = ctx.state.visible_variables(owner.key)
    trigger(ctx, owner.key, catch_event, None)
    if owner.key in ctx.state.element_instances:  # non-interrupting: the owner goes on
        rearm_after(ctx, timer, catch_event, variables)
    return True
