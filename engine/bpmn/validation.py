"""Structural checks of a built process graph, mirroring Zeebe's design-time validators.

The parser has already checked each element on its own (extension elements, expressions,
references). What is left needs the whole graph: start events per scope (ProcessValidator,
SubProcessValidator), conditions and default flows (SequenceFlowValidator, FlowNodeValidator),
end events without outgoing flows (EndEventValidator), boundary events without incoming flows
and one catch per error code (BoundaryEventValidator, ModelUtil.verifyNoDuplicatedBoundaryEvents).
Messages are Zeebe's own.

Elements other than start events without incoming flows are accepted, as Zeebe accepts them:
they are never reached. Elements without outgoing flows end their path (implicit end).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.bpmn.model import Element, ElementType, EventType

AddProblem = Callable[[str | None, str], None]


def validate_process(
    process: Element,
    start_events: dict[str, tuple[int, list[Element]]],
    rejected_ids: set[str],
    add: AddProblem,
) -> None:
    """Check `process` and every scope in it; report through `add(element_id, message)`."""
    _check_scope(process, start_events, rejected_ids, add)


def _check_scope(
    scope: Element,
    start_events: dict[str, tuple[int, list[Element]]],
    rejected_ids: set[str],
    add: AddProblem,
) -> None:
    total, none_start_events = start_events.get(scope.id, (0, []))
    if scope.element_type is ElementType.PROCESS:
        if total == 0:
            add(scope.id, "Must have at least one start event")
        elif len(none_start_events) > 1:
            add(scope.id, "Multiple none start events are not allowed")
    elif total != 1:
        add(scope.id, "Must have exactly one start event")

    for element in scope.children:
        _check_element(element, rejected_ids, add)
        if element.is_scope:
            _check_scope(element, start_events, rejected_ids, add)


def _check_element(element: Element, rejected_ids: set[str], add: AddProblem) -> None:
    if element.element_type is ElementType.EXCLUSIVE_GATEWAY:
        if len(element.outgoing) > 1:
            for flow in element.outgoing:
                if flow is not element.default_flow and flow.condition is None:
                    add(flow.id, "Must have a condition or be default flow")
    elif any(flow.condition is not None for flow in element.outgoing):
        add(element.id, "Conditional sequence flows are only supported at exclusive or inclusive gateway")

    if element.element_type is ElementType.END_EVENT and element.outgoing:
        add(element.id, "End events must not have outgoing sequence flows to other elements.")

    if element.element_type is ElementType.BOUNDARY_EVENT and element.incoming:
        add(element.id, "Cannot have incoming sequence flows")

    if element.boundary_events:
        _check_error_catch_events(element, add)


def _check_error_catch_events(activity: Element, add: AddProblem) -> None:
    error_boundaries = [b for b in activity.boundary_events if b.event_type is EventType.ERROR]
    catch_all = [b for b in error_boundaries if b.error_ref is None]
    if len(catch_all) > 1:
        add(
            activity.id,
            "The same scope can not contain more than one error catch event without error code. "
            "An error catch event without error code catches all errors.",
        )
    seen: set[str] = set()
    reported: set[str] = set()
    for boundary in error_boundaries:
        code = boundary.error_code
        if code is None:
            continue
        if code in seen and code not in reported:
            reported.add(code)
            add(
                activity.id,
                f"Multiple error catch events with the same error code '{code}' are not "
                "supported on the same scope.",
            )
        seen.add(code)
