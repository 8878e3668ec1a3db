"""What every processor and behaviour works with while one command is processed.

`ProcessingContext` holds the partition's state, the `emit` function (append an event and
apply it at once), the clock, and the follow-up queue: work that Zeebe writes as a follow-up
command (ACTIVATE_ELEMENT, COMPLETE_ELEMENT) is logged as that COMMAND record when it is queued
(`follow_up_command`) and run after the current step, inside the same command's processing, so
the records of one command form one atomic log batch (reference §3.8 order). The events of a
follow-up point at it (`sourceRecordPosition`), as in a Zeebe log; on replay a COMMAND record
changes nothing but the position (only events are applied), so nothing runs twice.
Plain callables appended to `queue` keep the source of the command that queued them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from engine.processing.state import ElementInstance, PartitionState

#: Follow-up steps one command may run before it is refused. Each step is a few records of the
#: command's one atomic batch, kept in memory until the batch is written (about 3 KB a step), so a
#: model that loops without a wait state (a cycle of gateways; Zeebe spins such an instance
#: forever, batch by batch) would otherwise hold the event loop and grow memory without end: at
#: this bound it costs about 150 MB and 4 s once, and the command is refused as Zeebe refuses a
#: batch that outgrows its limit. A command of a sane model stays far below it: a multi-instance
#: body activates its items in slices, and a signal that resumes ten thousand waiting instances
#: takes two or three steps for each.
MAX_FOLLOW_UPS = 50_000


class FollowUpLimitExceeded(Exception):
    """One command queued more than MAX_FOLLOW_UPS follow-ups (the partition refuses it)."""

    def __init__(self, limit: int, element_id: str):
        super().__init__(limit, element_id)
        self.limit = limit
        self.element_id = element_id

    def reason(self, value_type: str, intent: str) -> str:
        where = f", the last at element '{self.element_id}'" if self.element_id else ""
        return (
            f"Expected to process {value_type} {intent} within {self.limit} follow-up steps, but it "
            f"took more{where}: the process loops without a wait state (a cycle of gateways, events or "
            "call activities with no task, timer or message in it); none of its records were kept"
        )


class FollowUp:
    """Queued work and the log position its records name as their source."""

    __slots__ = ("source_position", "work")

    def __init__(self, source_position: int, work: Callable[[], object]):
        self.source_position = source_position
        self.work = work

    def __call__(self) -> object:
        return self.work()


class FollowUpQueue(deque[Callable[[], object]]):
    """The follow-up queue; a plain callable appended to it is run with the source position of
    the command being processed when it was queued."""

    def __init__(self, ctx: ProcessingContext):
        super().__init__()
        self._ctx = ctx

    def append(self, work: Callable[[], object]) -> None:
        if type(work) is not FollowUp:
            work = FollowUp(self._ctx.source_position, work)
        super().append(work)


class ProcessingContext:
    def __init__(
        self,
        partition_id: int,
        state: PartitionState,
        emit: Callable[[str, str, int, dict[str, Any]], dict[str, Any]],
        now: Callable[[], int],
    ):
        self.partition_id = partition_id
        self.state = state
        self.emit = emit
        self.now = now
        # Position of the command whose records are being written (their sourceRecordPosition).
        self.source_position = -1
        # Set by the partition: log a follow-up COMMAND record, return its position.
        self.write_command: Callable[[str, str, int, dict[str, Any]], int] = (
            lambda value_type, intent, key, value: self.source_position
        )
        self.queue: deque[Callable[[], object]] = FollowUpQueue(self)
        # The element of the newest follow-up command (named when a command runs away).
        self.last_follow_up_element = ""
        # Completion variables handed from an activation to the queued completion (in-memory
        # only: both happen inside the same command's processing).
        self.completion_variables: dict[int, dict[str, Any]] = {}
        # Scope instances activated without their start event (modification, start
        # instructions): the instructions say what runs inside.
        self.scopes_without_start: set[int] = set()
        # Scopes ended by a terminate end event in the current command: no new activations.
        self.closing_scopes: set[int] = set()
        # Set by the broker: a root process instance finished (CreateWithResult waiters).
        self.on_process_completed: Callable[[int, dict[str, Any]], None] = lambda key, variables: None
        # Run once the current command succeeded (a rolled-back command must not answer anyone).
        self.after_command: list[Callable[[], None]] = []

    def follow_up_command(
        self, value_type: str, intent: str, key: int, value: dict[str, Any], work: Callable[[], object]
    ) -> None:
        """Log the follow-up command Zeebe would write now, and queue `work` (its processing)."""
        self.queue.append(FollowUp(self.write_command(value_type, intent, key, value), work))
        self.last_follow_up_element = value.get("elementId", "")

    def drain(self) -> None:
        source = self.source_position
        budget = MAX_FOLLOW_UPS
        try:
            while self.queue:
                budget -= 1
                if budget < 0:
                    raise FollowUpLimitExceeded(MAX_FOLLOW_UPS, self.last_follow_up_element)
                follow_up = self.queue.popleft()
                if type(follow_up) is FollowUp:
                    self.source_position = follow_up.source_position
                    follow_up.work()
                else:
                    follow_up()
        finally:
            self.source_position = source
        self.closing_scopes.clear()

    def discard_follow_ups(self) -> None:
        self.queue.clear()
        self.closing_scopes.clear()
        self.after_command.clear()
        self.completion_variables.clear()

    def emit_pi(self, instance: ElementInstance, intent: str) -> None:
        self.emit("PROCESS_INSTANCE", intent, instance.key, instance.record_value())

    def element_of(self, instance: ElementInstance) -> Any:
        return self.state.model(instance.process_definition_key).elements_by_id[instance.element_id]
