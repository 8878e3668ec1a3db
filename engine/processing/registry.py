"""The three registries of the processing engine: command processors, element behaviours and
catch-event trigger kinds.

Modules register themselves when `engine.processing.catalog` imports them (one import line per
module there). Lookups happen at run time, by key, so the dispatcher never imports a processor
or a behaviour: that is what keeps engine/processing free of import cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # typing only: the registry imports nothing it dispatches to
    from engine.processing.command import Command
    from engine.processing.context import ProcessingContext
    from engine.processing.state import ElementInstance

Processor = Callable[["ProcessingContext", "Command"], Any]

#: (value type, intent) -> processor
PROCESSORS: dict[tuple[str, str], Processor] = {}


def processor(value_type: str, *intents: str) -> Callable[[Processor], Processor]:
    """Register a command processor for these intents of `value_type`."""

    def decorate(function: Processor) -> Processor:
        for intent in intents:
            key = (value_type, intent)
            if key in PROCESSORS:
                raise RuntimeError(f"two processors for {value_type} {intent}")
            PROCESSORS[key] = function
        return function

    return decorate


def processor_for(value_type: str, intent: str) -> Processor | None:
    return PROCESSORS.get((value_type, intent))


class ElementBehavior(Protocol):
    """What the state-transition module calls for an element instance (Zeebe's
    BpmnElementProcessor): each step writes the records of its transition."""

    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        """ACTIVATING was written: do the element's work (mappings, job, subscriptions...),
        write ACTIVATED and, for an element that does not wait, queue its completion."""

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        """COMPLETING was written and output mappings applied: write COMPLETED and go on."""

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        """TERMINATING was written and the children terminated: release what the element
        holds (job, called instance) before TERMINATED is written."""

    def on_child_completed(
        self, ctx: ProcessingContext, scope: ElementInstance, element: Any, child: ElementInstance | None
    ) -> None:
        """A child of this scope ended a path (or a called process completed)."""


#: BpmnElementType name -> behaviour
BEHAVIORS: dict[str, ElementBehavior] = {}


def behavior(*element_types: str) -> Callable[[type], type]:
    """Class decorator: register one instance of the class for these element types."""

    def decorate(cls: type) -> type:
        instance = cls()
        for element_type in element_types:
            if element_type in BEHAVIORS:
                raise RuntimeError(f"two behaviours for {element_type}")
            BEHAVIORS[element_type] = instance
        return cls

    return decorate


def behavior_for(element_type: str) -> ElementBehavior:
    try:
        return BEHAVIORS[element_type]
    except KeyError:
        raise LookupError(f"no behaviour registered for element type {element_type}") from None


class TriggerKind(Protocol):
    """A source of catch-event triggers (error, timer, message, signal...): opens and closes
    the subscription of one catch event for one owning element instance.

    Opening is two-phase, as in Zeebe: `evaluate` every catch event of the owner first (it may
    raise `MappingFailure`: an incident, and nothing written yet), then `open` each with what
    its evaluation returned."""

    def evaluate(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> Any:
        """Evaluate what the subscription needs (a due date, a correlation key...)."""

    def open(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any, evaluated: Any) -> None:
        """Start listening (TIMER CREATED, a message subscription...)."""

    def close(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> None:
        """The owner is leaving (completed, terminated): stop listening (TIMER CANCELED...)."""


class SearchedTrigger:
    """A trigger kind with nothing to listen for: the thrown event (an error, an escalation)
    searches the scopes for its catch event, so opening and closing a catch write nothing."""

    def evaluate(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> None:
        return None

    def open(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any, evaluated: Any) -> None:
        return None

    def close(self, ctx: ProcessingContext, owner: ElementInstance, catch_event: Any) -> None:
        return None


#: BpmnEventType name of the catch event -> trigger kind
TRIGGER_KINDS: dict[str, TriggerKind] = {}


def trigger_kind(event_type: str) -> Callable[[type], type]:
    """Class decorator: register one instance of the class as the trigger kind of an event type."""

    def decorate(cls: type) -> type:
        if event_type in TRIGGER_KINDS:
            raise RuntimeError(f"two trigger kinds for {event_type}")
        TRIGGER_KINDS[event_type] = cls()
        return cls

    return decorate


def trigger_kind_for(event_type: str) -> TriggerKind | None:
    return TRIGGER_KINDS.get(event_type)
