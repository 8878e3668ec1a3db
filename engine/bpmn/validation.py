"""Structural checks of a built process graph, mirroring Zeebe's design-time validators.

The parser has already checked each element on its own (extension elements, expressions,
references). What is left needs the whole graph: start events per scope (ProcessValidator,
SubProcessValidator), conditions and default flows (SequenceFlowValidator, FlowNodeValidator),
end events without outgoing flows (EndEventValidator), boundary events without incoming flows
and one catch per error code (BoundaryEventValidator, ModelUtil.verifyNoDuplicatedBoundaryEvents),
inclusive gateway conditions (SequenceFlowValidator), event-based gateways
(EventBasedGatewayValidator), duplicate message/signal/error/escalation catches per scope
(ModelUtil.verifyNoDuplicated*), link pairs (ModelUtil.verifyLinkIntermediateEvents),
compensation boundary events and handlers (BoundaryEventValidator, CompensationTaskValidator).
Messages are Zeebe's own.

Elements other than start events without incoming flows are accepted, as Zeebe accepts them:
they are never reached. Elements without outgoing flows end their path (implicit end).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.bpmn.model import COMPENSATION_HANDLER_TYPES, Element, ElementType, EventType

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
        # MessageValidator: one message start event per bpmn:message; ProcessValidator:
        # verifyNoDuplicateSignalStartEvents / ...MessageStartEvents (per distinct message).
        refs = [start.message.message_ref for start in scope.start_events if start.message is not None]
        for ref in dict.fromkeys(refs):
            if ref is not None and refs.count(ref) > 1:
                add(ref, "A message cannot be referred by more than one start event")
        seen_refs: set[str | None] = set()
        distinct_starts = []
        for start in scope.start_events:
            if start.message is not None:
                if start.message.message_ref in seen_refs:
                    continue
                seen_refs.add(start.message.message_ref)
            distinct_starts.append(start)
        _check_duplicate_names(distinct_starts, scope.id, add)
    elif total != 1:
        add(scope.id, "Must have exactly one start event")

    # ModelUtil.verifyNoDuplicatedEventSubprocesses: the start events of a scope's event
    # subprocesses are all catch events of that scope.
    event_sub_process_starts = [start for sub in scope.event_sub_processes for start in sub.start_events]
    _check_duplicate_names(event_sub_process_starts, scope.id, add)
    _check_duplicate_catches(event_sub_process_starts, scope.id, add)
    _check_links(scope, add)

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
    elif element.element_type is ElementType.INCLUSIVE_GATEWAY:
        if len(element.outgoing) > 1:
            for flow in element.outgoing:
                if flow is not element.default_flow and flow.condition is None:
                    add(flow.id, "Must have a condition")
    elif any(flow.condition is not None for flow in element.outgoing):
        add(element.id, "Conditional sequence flows are only supported at exclusive or inclusive gateway")

    if element.element_type is ElementType.EVENT_BASED_GATEWAY:
        _check_event_based_gateway(element, add)
    if element.element_type is ElementType.BOUNDARY_EVENT:
        _check_boundary_kind(element, add)
    if element.is_for_compensation:
        _check_compensation_handler(element, add)
    if element.element_type is ElementType.RECEIVE_TASK and element.message is not None:
        name = _name_of(element)
        if name is not None and any(
            _name_of(b) == name for b in element.boundary_events if b.message is not None
        ):
            add(element.id, "Cannot reference the same message name as a boundary event")

    if element.element_type is ElementType.END_EVENT and element.outgoing:
        add(element.id, "End events must not have outgoing sequence flows to other elements.")

    if element.element_type is ElementType.BOUNDARY_EVENT and element.incoming:
        add(element.id, "Cannot have incoming sequence flows")

    if element.boundary_events:
        # ActivityValidator: ModelUtil.verifyNoDuplicatedBoundaryEvents
        _check_duplicate_names(element.boundary_events, element.id, add)
        _check_duplicate_catches(element.boundary_events, element.id, add)


def _name_of(event: Element) -> str | None:
    """The raw name of the message or signal an event refers to (Zeebe compares names)."""
    if event.message is not None and event.message.name is not None:
        return event.message.name.raw
    if event.signal is not None:
        return event.signal.name.raw
    return None


def _check_duplicate_names(events: list[Element], owner_id: str, add: AddProblem) -> None:
    """ModelUtil.verifyNoDuplicatedEventDefinition for message and signal names."""
    for event_type, word in ((EventType.MESSAGE, "message"), (EventType.SIGNAL, "signal")):
        names = [_name_of(e) for e in events if e.event_type is event_type]
        reported: set[str] = set()
        for name in names:
            if name is not None and names.count(name) > 1 and name not in reported:
                reported.add(name)
                add(
                    owner_id,
                    f"Multiple {word} event definitions with the same name '{name}' are not allowed.",
                )


def _check_duplicate_catches(catch_events: list[Element], owner_id: str, add: AddProblem) -> None:
    """ModelUtil.verifyNoDuplicatedErrorHandler / ...EscalationHandler."""
    errors = [e for e in catch_events if e.event_type is EventType.ERROR]
    if sum(1 for e in errors if e.error_ref is None) > 1:
        add(
            owner_id,
            "The same scope can not contain more than one error catch event without error code. "
            "An error catch event without error code catches all errors.",
        )
    codes = [e.error_code for e in errors if e.error_code is not None]
    for code in dict.fromkeys(codes):
        if codes.count(code) > 1:
            add(
                owner_id,
                f"Multiple error catch events with the same error code '{code}' are not supported on the same scope.",
            )
    escalations = [e.escalation for e in catch_events if e.event_type is EventType.ESCALATION]
    if sum(1 for e in escalations if e is not None and e.escalation_ref is None) > 1:
        add(
            owner_id,
            "The same scope can not contain more than one escalation catch event without escalation code. "
            "An escalation catch event without escalation code catches all escalations.",
        )
    escalation_codes = [e.code.raw for e in escalations if e is not None and e.code is not None]
    for code in dict.fromkeys(escalation_codes):
        if escalation_codes.count(code) > 1:
            add(
                owner_id,
                f"Multiple escalation catch events with the same escalation code '{code}' are not "
                "supported on the same scope.",
            )


def _check_event_based_gateway(gateway: Element, add: AddProblem) -> None:
    if len(gateway.outgoing) < 2:
        add(gateway.id, "Event-based gateway must have at least 2 outgoing sequence flows.")
    targets = [flow.target for flow in gateway.outgoing]
    if not all(
        target.element_type is ElementType.INTERMEDIATE_CATCH_EVENT
        and target.event_type in (EventType.MESSAGE, EventType.TIMER, EventType.SIGNAL, EventType.CONDITIONAL)
        for target in targets
    ):
        add(
            gateway.id,
            "Event-based gateway must not have an outgoing sequence flow to other elements than "
            "message/timer/signal/conditional intermediate catch events.",
        )
    _check_duplicate_names(targets, gateway.id, add)
    if any(flow.source is not gateway for target in targets for flow in target.incoming):
        add(
            gateway.id,
            "Target elements of an event gateway must not have any additional incoming sequence flows "
            "other than that from the event gateway.",
        )


def _check_boundary_kind(boundary: Element, add: AddProblem) -> None:
    activity = boundary.attached_to
    escalation_misplaced = activity is not None and activity.element_type not in (
        ElementType.SUB_PROCESS,
        ElementType.CALL_ACTIVITY,
    )
    if boundary.event_type is EventType.ESCALATION and escalation_misplaced:
        add(
            boundary.id,
            "An escalation boundary event should only be attached to a subprocess, or a call activity.",
        )
    compensation_misconnected = bool(boundary.outgoing) or boundary.compensation_handler is None
    if boundary.event_type is EventType.COMPENSATION and compensation_misconnected:
        add(
            boundary.id,
            "Compensation boundary events must have a compensation association and no outgoing sequence flows",
        )


def _check_compensation_handler(handler: Element, add: AddProblem) -> None:
    if handler.element_type not in COMPENSATION_HANDLER_TYPES:
        add(
            handler.id,
            "Compensation task must be one of: service task, user task, send task, script task, "
            "manual task, or undefined task.",
        )
    if handler.incoming:
        add(handler.id, "A compensation handler should have no incoming sequence flows")
    if handler.outgoing:
        add(handler.id, "A compensation handler should have no outgoing sequence flows")
    if handler.boundary_events:
        add(handler.id, "A compensation handler should have no boundary events")


def _link_events(scope: Element, element_type: ElementType, *, nested: bool) -> list[Element]:
    found = []
    for child in scope.children:
        if child.element_type is element_type and child.link_name is not None:
            found.append(child)
        if nested and child.is_scope:
            found.extend(_link_events(child, element_type, nested=True))
    return found


def _check_links(scope: Element, add: AddProblem) -> None:
    """ModelUtil.verifyLinkIntermediateEvents: catch link names unique (this scope and the
    scopes inside it, as Zeebe collects them), and every throw link of this scope has a catch
    link of the same name in this scope."""
    catch_names = [
        e.link_name for e in _link_events(scope, ElementType.INTERMEDIATE_CATCH_EVENT, nested=True)
    ]
    for name in dict.fromkeys(catch_names):
        if catch_names.count(name) > 1:
            add(
                scope.id,
                f"Multiple intermediate catch link event definitions with the same name '{name}' are not allowed.",
            )
    for throw in _link_events(scope, ElementType.INTERMEDIATE_THROW_EVENT, nested=False):
        if throw.link_name not in scope.link_catch_events:
            add(
                scope.id,
                f"Can't find an catch link event for the throw link event with the name '{throw.link_name}'.",
            )
