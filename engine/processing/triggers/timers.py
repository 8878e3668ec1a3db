"""Timer catch events (reference §5.2 "Timers"): intermediate timer catch events, timer
boundary events (interrupting or not), timer start events of event sub-processes, and the
timer start events of a process (scheduled at deployment).

A subscription is a TIMER record: CREATED when the owner is activated, CANCELED when it leaves,
TRIGGERED by the TIMER TRIGGER command the broker's loop writes once the due date has passed
(processors/timers.py). A cycle (`R5/PT10S`, `R/P1D`, cron) is re-armed after each firing
while repetitions remain. Timers are state like any other: after a restart, timers that came
due while the engine was down fire at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.bpmn import timers as timer_values
from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import failure_message
from engine.processing.registry import trigger_kind
from engine.processing.state import ElementInstance, Timer
from engine.records import timer_value


@dataclass(slots=True)
class DueDate:
    due_date: int
    #: None for a date or a duration
    cycle: timer_values.Cycle | None

    @property
    def repetitions(self) -> int:
        return 1 if self.cycle is None else self.cycle.zeebe_repetitions


def evaluate_timer(catch_event: Any, variables: dict[str, Any], now: int) -> DueDate:
    """When the timer of `catch_event` is due (from `now`); `MappingFailure` if its expression
    fails or gives no usable date, duration or cycle (an EXTRACT_VALUE_ERROR incident)."""
    definition = catch_event.timer
    if definition is None:
        raise MappingFailure(
            "EXTRACT_VALUE_ERROR", f"The timer event '{catch_event.id}' has no timer definition"
        )
    expression = definition.expression
    try:
        # Not JSON-converted: a FEEL date and time or duration is taken as it is.
        value = expression.evaluate(variables)
    except Exception as exc:  # FEEL failures become incidents
        raise MappingFailure("EXTRACT_VALUE_ERROR", failure_message(expression, exc)) from exc
    try:
        due, cycle = timer_values.due_date(definition.kind.value, value, now_ms=now)
    except timer_values.TimerError as error:
        raise MappingFailure("EXTRACT_VALUE_ERROR", str(error)) from error
    return DueDate(due, cycle)


def create_timer(
    ctx: ProcessingContext,
    *,
    owner: ElementInstance | None,
    process_definition_key: int,
    catch_event: Any,
    due: DueDate,
    repetitions: int | None = None,
) -> int:
    """Write TIMER CREATED; `owner` None for a timer start event of a process."""
    key = ctx.state.new_key()
    ctx.emit(
        "TIMER",
        "CREATED",
        key,
        timer_value(
            element_instance_key=owner.key if owner is not None else -1,
            process_instance_key=owner.process_instance_key if owner is not None else -1,
            due_date=due.due_date,
            target_element_id=catch_event.id,
            repetitions=due.repetitions if repetitions is None else repetitions,
            process_definition_key=process_definition_key,
        ),
    )
    return key


def cancel_timer(ctx: ProcessingContext, timer: Timer) -> None:
    ctx.emit("TIMER", "CANCELED", timer.key, dict(timer.value))


def rearm_after(ctx: ProcessingContext, timer: Timer, catch_event: Any, variables: dict[str, Any]) -> bool:
    """After `timer` fired: arm the next repetition of its cycle, if any is left. The next due
    date counts from now, so an engine that was down fires once, not once per missed period."""
    repetitions = int(timer.value["repetitions"])
    if repetitions == 1 or repetitions == 0:
        return False
    definition = catch_event.timer
    if definition is None or definition.kind.value != "timeCycle":
        return False
    now = ctx.now()
    try:
        due = evaluate_timer(catch_event, variables, now)
    except MappingFailure:
        return False  # the cycle no longer evaluates: it ends (it was valid when armed)
    assert due.cycle is not None
    next_due = due.cycle.next_due(max(now, timer.due_date))
    if next_due is None:
        return False
    owner = ctx.state.element_instances.get(timer.element_instance_key)
    create_timer(
        ctx,
        owner=owner,
        process_definition_key=int(timer.value["processDefinitionKey"]),
        catch_event=catch_event,
        due=DueDate(next_due, due.cycle),
        repetitions=-1 if repetitions < 0 else repetitions - 1,
    )
    return True


@trigger_kind("TIMER")
class TimerTrigger:
    def evaluate(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> DueDate:
        return evaluate_timer(catch_event, ctx.state.visible_variables(owner.key), ctx.now())

    def open(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any, evaluated: Any) -> None:
        create_timer(
            ctx,
            owner=owner,
            process_definition_key=owner.process_definition_key,
            catch_event=catch_event,
            due=evaluated,
        )

    def close(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> None:
        for timer_key in list(ctx.state.element_timers.get(owner.key, {})):
            timer = ctx.state.timers.get(timer_key)
            if timer is not None and timer.value["targetElementId"] == catch_event.id:
                cancel_timer(ctx, timer)


def start_event_timers(ctx: ProcessingContext, process_definition_key: int) -> list[Timer]:
    """The armed timer start events of a process definition."""
    return [
        timer
        for timer in ctx.state.timers.values()
        if timer.element_instance_key <= 0 and timer.value["processDefinitionKey"] == process_definition_key
    ]
