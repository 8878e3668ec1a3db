"""What every processor and behaviour works with while one command is processed.

`ProcessingContext` holds the partition's state, the `emit` function (append an event and
apply it at once), the clock, and the follow-up queue: work that Zeebe writes as a follow-up
command (ACTIVATE_ELEMENT, COMPLETE_ELEMENT) is queued and run after the current step, inside
the same command's processing, so the records of one command form one atomic log batch
(reference §3.8 order).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from engine.processing.state import ElementInstance, PartitionState


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
        self.queue: deque[Callable[[], object]] = deque()
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

    def drain(self) -> None:
        while self.queue:
            self.queue.popleft()()
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
