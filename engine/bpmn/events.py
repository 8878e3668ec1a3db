"""Reading BPMN events and their event definitions into the model (a part of the parser).

`EventReader` is mixed into the parser's process reader: start, intermediate catch and throw,
boundary and end events, with their timer, message, signal, error, escalation, link and
compensation definitions, checked with Zeebe's rules and messages (StartEventValidator,
SubProcessValidator, IntermediateCatchEventValidator, BoundaryEventValidator, EndEventValidator,
MessageValidator, SignalValidator, Escalation*Validator, LinkEventDefinitionValidator,
TimerEventDefinitionValidator, TimerCatchEventExpressionValidator). Graph-wide rules (duplicates,
links, gateways) are in `engine.bpmn.validation`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from engine.bpmn import expressions, timers
from engine.bpmn.model import (
    DEFAULT_JOB_RETRIES,
    CompensationDefinition,
    Element,
    ElementType,
    EscalationDefinition,
    EventType,
    Expression,
    MessageDefinition,
    SignalDefinition,
    TimerDefinition,
    TimerKind,
)
from engine.bpmn.xml_access import bpmn_children, is_false, split, zeebe_extensions

# Event definitions: the word naming them in an "unsupported" message, and their event type.
EVENT_KINDS = {
    "timerEventDefinition": ("Timer", EventType.TIMER),
    "messageEventDefinition": ("Message", EventType.MESSAGE),
    "signalEventDefinition": ("Signal", EventType.SIGNAL),
    "escalationEventDefinition": ("Escalation", EventType.ESCALATION),
    "compensateEventDefinition": ("Compensation", EventType.COMPENSATION),
    "conditionalEventDefinition": ("Conditional", EventType.CONDITIONAL),
    "linkEventDefinition": ("Link", EventType.LINK),
    "cancelEventDefinition": ("Cancel", EventType.UNSPECIFIED),
    "errorEventDefinition": ("Error", EventType.ERROR),
    "terminateEventDefinition": ("Terminate", EventType.TERMINATE),
    "eventDefinitionRef": ("Referenced (eventDefinitionRef)", EventType.UNSPECIFIED),
}

# Which event definitions each kind of event may have (Zeebe's StartEventValidator,
# SubProcessValidator, IntermediateCatchEventValidator, BoundaryEventValidator,
# EndEventValidator), and the message when it has another one.
_PROCESS_START_KINDS = frozenset(
    {"timerEventDefinition", "messageEventDefinition", "signalEventDefinition", "conditionalEventDefinition"}
)
_EVENT_SUB_PROCESS_START_KINDS = frozenset(
    {
        "timerEventDefinition",
        "messageEventDefinition",
        "errorEventDefinition",
        "signalEventDefinition",
        "escalationEventDefinition",
    }
)
_CATCH_KINDS = frozenset(
    {
        "messageEventDefinition",
        "timerEventDefinition",
        "signalEventDefinition",
        "linkEventDefinition",
        "conditionalEventDefinition",
    }
)
_THROW_KINDS = frozenset(
    {
        "messageEventDefinition",
        "signalEventDefinition",
        "escalationEventDefinition",
        "linkEventDefinition",
        "compensateEventDefinition",
    }
)
_BOUNDARY_KINDS = frozenset(
    {
        "timerEventDefinition",
        "messageEventDefinition",
        "errorEventDefinition",
        "signalEventDefinition",
        "escalationEventDefinition",
        "compensateEventDefinition",
        "conditionalEventDefinition",
    }
)
_END_KINDS = frozenset(
    {
        "errorEventDefinition",
        "messageEventDefinition",
        "terminateEventDefinition",
        "signalEventDefinition",
        "escalationEventDefinition",
        "compensateEventDefinition",
    }
)
# Event definitions that may be non-interrupting (Zeebe ModelUtil.NON_INTERRUPTING_EVENT_DEFINITIONS).
_NON_INTERRUPTING_KINDS = frozenset(
    {
        "messageEventDefinition",
        "timerEventDefinition",
        "signalEventDefinition",
        "escalationEventDefinition",
        "conditionalEventDefinition",
    }
)


#: The word Zeebe uses for each timer kind in "Invalid timer <word> expression (...)".
_TIMER_WORDS = {TimerKind.DURATION: "duration", TimerKind.DATE: "date", TimerKind.CYCLE: "cycle"}


def _type_name(value: object) -> str:
    """Zeebe's name of a JSON value type, for "Expected result ... to be 'STRING'" messages."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list):
        return "ARRAY"
    if isinstance(value, dict):
        return "OBJECT"
    return type(value).__name__


def _deploy_time_string(expression: Expression) -> str | None:
    """Evaluate a start event's FEEL name without variables, as Zeebe does at deploy time
    (ProcessMessageStartEventMessageNameValidator); None when it gives a non-empty string,
    else the end of a message saying why."""
    try:
        value = expression.evaluate({})
    except Exception as error:  # any FEEL failure rejects the deployment
        return f"to be evaluable without variables, but '{expression.text}' failed: {error}"
    if not isinstance(value, str) or not value:
        return f"to be a non-empty string, but '{expression.text}' gave '{_type_name(value)}' ({value!r})"
    return None


class EventReader:
    """Event readers of the process reader (`engine.bpmn.parser._ProcessReader`)."""

    if TYPE_CHECKING:  # provided by the process reader
        # parser._Problems and parser._DefinitionsReader (typed loosely: naming them here
        # would make engine.bpmn's modules import each other in a circle)
        problems: Any
        definitions: Any
        start_events: dict[str, tuple[int, list[Element]]]
        pending_boundaries: list[tuple[Element, str | None]]
        pending_compensations: list[Element]

        def _new_element(
            self,
            xml: ET.Element,
            scope: Element,
            element_type: ElementType,
            event_type: EventType = EventType.UNSPECIFIED,
        ) -> Element | None: ...

        def _expression_attribute(
            self,
            element: Element,
            extension: ET.Element,
            extension_name: str,
            attribute: str,
            *,
            default: str | None = None,
            non_static: bool = False,
        ) -> Expression | None: ...

        def _read_task_headers(self, xml: ET.Element, element: Element) -> None: ...

    def _event_definitions(self, xml: ET.Element) -> list[tuple[str, ET.Element]]:
        return [
            (split(child.tag)[1], child) for child in bpmn_children(xml) if split(child.tag)[1] in EVENT_KINDS
        ]

    # --- readers per element type ---------------------------------------------------------
    def _read_start_event(self, xml: ET.Element, scope: Element) -> Element | None:
        definitions = self._event_definitions(xml)
        total, none_events = self.start_events[scope.id]
        kind = definitions[0][0] if definitions else None
        event_type = EVENT_KINDS[kind][1] if kind else EventType.NONE
        element = self._new_element(xml, scope, ElementType.START_EVENT, event_type)
        if element is None:
            self.start_events[scope.id] = (total + 1, none_events)
            return None
        scope.start_events.append(element)
        if len(definitions) > 1:
            self.problems.add(element.id, "Start event can't have more than one type")
        if kind is None:
            self.start_events[scope.id] = (total + 1, [*none_events, element])
            if scope.element_type is ElementType.EVENT_SUB_PROCESS:
                self.problems.add(
                    element.id,
                    "Start events in event subprocesses must be one of: message, timer, error, signal or escalation",
                )
            elif scope.none_start_event is None:
                scope.none_start_event = element
            return element
        self.start_events[scope.id] = (total + 1, none_events)
        definition = definitions[0][1]
        if scope.element_type is ElementType.SUB_PROCESS:
            self.problems.add(element.id, "Start events in subprocesses must be of type none")
            return element
        if scope.element_type is ElementType.EVENT_SUB_PROCESS:
            element.interrupting = not is_false(xml.get("isInterrupting"))
            if kind not in _EVENT_SUB_PROCESS_START_KINDS:
                self.problems.add(
                    element.id,
                    "Start events in event subprocesses must be one of: message, timer, error, signal or escalation",
                )
                return element
            if not element.interrupting and kind not in _NON_INTERRUPTING_KINDS:
                self.problems.add(element.id, "Non-Interrupting event of this type is not allowed")
            self._read_event_definition(element, kind, definition, "start")
            if element.interrupting and element.timer is not None and element.timer.kind is TimerKind.CYCLE:
                self.problems.add(element.id, "Interrupting timer event with time cycle is not allowed.")
            return element
        if kind not in _PROCESS_START_KINDS:
            self.problems.add(
                element.id,
                "Start events of a process must be one of: none, timer, message, signal or conditional "
                "(error, escalation and compensation start events belong in event subprocesses)",
            )
            return element
        self._read_event_definition(element, kind, definition, "process start")
        return element

    def _read_end_event(self, xml: ET.Element, scope: Element) -> Element | None:
        definitions = self._event_definitions(xml)
        event_type = EventType.NONE
        if definitions:
            event_type = EVENT_KINDS[definitions[0][0]][1]
        element = self._new_element(xml, scope, ElementType.END_EVENT, event_type)
        if element is None:
            return None
        if len(definitions) > 1:
            self.problems.add(element.id, "Must have at most one event definition")
        if not definitions:
            return element
        kind, definition = definitions[0]
        if kind not in _END_KINDS:
            self.problems.add(
                element.id,
                "End events must be one of: none, error, message, terminate, signal, escalation or compensation",
            )
            return element
        if kind == "errorEventDefinition":
            self._read_error_end(element, definition)
            return element
        self._read_event_definition(element, kind, definition, "end")
        if kind == "compensateEventDefinition" and is_false(definition.get("waitForCompletion")):
            self.problems.add(
                element.id, "A compensation end event waitForCompletion attribute must be true or not present"
            )
        if kind == "messageEventDefinition":
            self._read_message_throw_job(xml, element)
        return element

    def _read_error_end(self, element: Element, definition: ET.Element) -> None:
        path = "errorEventDefinition"
        error_ref = (definition.get("errorRef") or "").strip()
        if not error_ref or error_ref not in self.definitions.errors:
            self.problems.add(element.id, "Must reference an error", path)
            return
        error_code = self.definitions.errors[error_ref]
        element.error_ref = error_ref
        if not error_code:
            self.problems.add(element.id, "ErrorCode must be present and not empty", path)
            return
        # An error end event may compute its errorCode with FEEL (Zeebe 8.2+).
        expression, problems = expressions.check_expression(error_code, mandatory=True, attribute="errorCode")
        self.problems.extend(element.id, problems, path)
        element.error_code_expression = expression
        element.error_code = error_code if expression is not None and expression.is_static else None

    def _read_boundary_event(self, xml: ET.Element, scope: Element) -> Element | None:
        definitions = self._event_definitions(xml)
        event_type = EVENT_KINDS[definitions[0][0]][1] if definitions else EventType.UNSPECIFIED
        element = self._new_element(xml, scope, ElementType.BOUNDARY_EVENT, event_type)
        if element is None:
            return None
        element.cancel_activity = not is_false(xml.get("cancelActivity"))
        self.pending_boundaries.append((element, xml.get("attachedToRef")))
        if len(definitions) != 1:
            self.problems.add(element.id, "Must have exactly one event definition")
            return element
        kind, definition = definitions[0]
        if kind not in _BOUNDARY_KINDS:
            self.problems.add(
                element.id, "Boundary events must be one of: timer, message, error, signal, escalation"
            )
            return element
        if not element.cancel_activity and kind not in _NON_INTERRUPTING_KINDS:
            self.problems.add(element.id, "Non-Interrupting event of this type is not allowed")
        if kind == "errorEventDefinition":
            self._read_error_catch(element, definition)
            return element
        self._read_event_definition(element, kind, definition, "boundary")
        if element.cancel_activity and element.timer is not None and element.timer.kind is TimerKind.CYCLE:
            self.problems.add(element.id, "Interrupting timer event with time cycle is not allowed.")
        return element

    def _read_error_catch(self, element: Element, definition: ET.Element) -> None:
        """An error boundary event or error start event of an event subprocess."""
        error_ref = (definition.get("errorRef") or "").strip()
        if not error_ref:
            return  # catch-all
        if error_ref not in self.definitions.errors:
            self.problems.add(
                element.id,
                f"The errorRef '{error_ref}' does not reference a bpmn:error",
                "errorEventDefinition",
            )
            return
        error_code = self.definitions.errors[error_ref]
        element.error_ref = error_ref
        if not error_code:
            self.problems.add(
                element.id,
                f"The referenced error '{error_ref}' must have an errorCode "
                "(leave out errorRef to catch all errors)",
                "errorEventDefinition",
            )
        elif error_code.startswith("="):
            self.problems.add(
                element.id,
                "The errorCode of the error catch event is not allowed to be an expression",
                "errorEventDefinition",
            )
        else:
            element.error_code = error_code

    def _read_intermediate_catch_event(self, xml: ET.Element, scope: Element) -> Element | None:
        definitions = self._event_definitions(xml)
        event_type = EVENT_KINDS[definitions[0][0]][1] if len(definitions) == 1 else EventType.UNSPECIFIED
        element = self._new_element(xml, scope, ElementType.INTERMEDIATE_CATCH_EVENT, event_type)
        if element is None:
            return None
        if len(definitions) != 1:
            self.problems.add(element.id, "Must have exactly one event definition")
            return element
        kind, definition = definitions[0]
        if kind not in _CATCH_KINDS:
            self.problems.add(
                element.id, "Event definition must be one of: message, timer, signal, link, or conditional"
            )
            return element
        self._read_event_definition(element, kind, definition, "intermediate catch")
        if element.timer is not None and element.timer.kind is TimerKind.CYCLE:
            self.problems.add(
                element.id, "Intermediate timer catch event must have either a time duration or a time date."
            )
        if element.link_name is not None and element.link_name not in scope.link_catch_events:
            scope.link_catch_events[element.link_name] = element
        return element

    def _read_intermediate_throw_event(self, xml: ET.Element, scope: Element) -> Element | None:
        definitions = self._event_definitions(xml)
        event_type = EVENT_KINDS[definitions[0][0]][1] if definitions else EventType.NONE
        element = self._new_element(xml, scope, ElementType.INTERMEDIATE_THROW_EVENT, event_type)
        if element is None:
            return None
        if len(definitions) > 1:
            self.problems.add(element.id, "Must have at most one event definition")
        if not definitions:
            return element
        kind, definition = definitions[0]
        if kind not in _THROW_KINDS:
            self.problems.add(
                element.id,
                "Intermediate throw events must be one of: none, message, signal, escalation, link or compensation",
            )
            return element
        self._read_event_definition(element, kind, definition, "intermediate throw")
        if kind == "compensateEventDefinition" and is_false(definition.get("waitForCompletion")):
            self.problems.add(
                element.id,
                "A compensation intermediate throwing event waitForCompletion attribute must be true or not present",
            )
        if kind == "messageEventDefinition":
            self._read_message_throw_job(xml, element)
        return element

    # --- event definitions ------------------------------------------------------------------
    def _read_event_definition(
        self, element: Element, kind: str, definition: ET.Element, position: str
    ) -> None:
        """Read one (allowed) event definition of `element` into its typed field.

        `position`: "process start", "start" (event subprocess), "intermediate catch",
        "intermediate throw", "boundary" or "end".
        """
        catching = position in ("start", "intermediate catch", "boundary")
        if kind == "timerEventDefinition":
            element.timer = self._read_timer(element, definition, evaluate_feel=position == "process start")
        elif kind == "messageEventDefinition":
            if position in ("intermediate throw", "end"):
                message_ref = (definition.get("messageRef") or "").strip() or None
                message_name = None
                if message_ref is not None and message_ref in self.definitions.messages:
                    message_name = self._message_name(message_ref, required=True, at_deploy=False)
                element.message = MessageDefinition(message_ref=message_ref, name=message_name)
            else:
                element.message = self._read_message_ref(
                    element,
                    definition.get("messageRef"),
                    "messageEventDefinition",
                    subscription=catching,
                    at_deploy=position == "process start",
                )
        elif kind == "signalEventDefinition":
            element.signal = self._read_signal(element, definition, at_deploy=position == "process start")
        elif kind == "escalationEventDefinition":
            element.escalation = self._read_escalation(element, definition, throw=not catching)
        elif kind == "linkEventDefinition":
            name = definition.get("name")
            if not name:
                self.problems.add(
                    element.id, "Link name must be present and not empty.", "linkEventDefinition"
                )
            else:
                element.link_name = name
        elif kind == "compensateEventDefinition":
            activity_ref = (definition.get("activityRef") or "").strip() or None
            element.compensation = CompensationDefinition(activity_ref=activity_ref)
            if activity_ref is not None and not catching:
                self.pending_compensations.append(element)
        elif kind == "errorEventDefinition":
            self._read_error_catch(element, definition)
        # terminate and conditional carry nothing more (conditional is gated by `support`)

    def _read_timer(
        self, element: Element, definition: ET.Element, *, evaluate_feel: bool
    ) -> TimerDefinition | None:
        path = "timerEventDefinition"
        found = [
            (local, child)
            for child in bpmn_children(definition)
            if (local := split(child.tag)[1]) in ("timeDuration", "timeDate", "timeCycle")
        ]
        if len(found) != 1:
            self.problems.add(
                element.id, "Must be exactly one type of timer: timeDuration, timeDate or timeCycle", path
            )
            return None
        local, child = found[0]
        kind = TimerKind(local)
        # getTextContent() of the BPMN model API: the text, trimmed.
        text = "".join(child.itertext()).strip()
        expression, problems = expressions.check_expression(text, mandatory=True, attribute=local)
        self.problems.extend(element.id, problems, f"{path} > {local}")
        if expression is None:
            return None
        value: object = expression.text
        if expression.is_feel:
            if not evaluate_feel:
                return TimerDefinition(kind=kind, expression=expression)
            # Zeebe evaluates a process timer start event's expression at deploy time, without
            # variables (TimerCatchEventExpressionValidator).
            try:
                value = expression.evaluate({})
            except Exception as error:  # FEEL failures of any kind reject the deployment
                self.problems.add(
                    element.id,
                    f"Invalid timer {_TIMER_WORDS[kind]} expression ({error})",
                    f"{path} > {local}",
                )
                return None
            if not isinstance(value, str):
                self.problems.add(
                    element.id,
                    f"Invalid timer {_TIMER_WORDS[kind]} expression (Expected result of the expression "
                    f"'{expression.text}' to be 'STRING', but was '{_type_name(value)}'.)",
                    f"{path} > {local}",
                )
                return None
        failure = timers.check_timer_text(local, str(value))
        if failure is not None:
            self.problems.add(element.id, failure, f"{path} > {local}")
            return None
        return TimerDefinition(kind=kind, expression=expression)

    def _message_name(self, message_ref: str, *, required: bool, at_deploy: bool) -> Expression | None:
        """The name of a bpmn:message as an expression; problems are reported on the message."""
        message = self.definitions.messages[message_ref]
        raw = message.get("name")
        if raw is None or raw == "":
            if required:
                self.problems.add_once(message_ref, "Name must be present and not empty")
            return None
        expression, problems = expressions.check_expression(raw, mandatory=True, attribute="name")
        for problem in problems:
            self.problems.add_once(message_ref, problem)
        if expression is not None and expression.is_feel and at_deploy:
            failure = _deploy_time_string(expression)
            if failure is not None:
                self.problems.add_once(
                    message_ref, f"Expected the message name of a message start event {failure}"
                )
                return None
        return expression

    def _read_message_ref(
        self,
        element: Element,
        message_ref: str | None,
        path: str | None,
        *,
        subscription: bool,
        at_deploy: bool,
    ) -> MessageDefinition | None:
        """A catching message reference (catch events, boundary events, start events, receive
        tasks): name required; a zeebe:subscription correlationKey except on process starts."""
        message_ref = (message_ref or "").strip()
        if not message_ref or message_ref not in self.definitions.messages:
            self.problems.add(element.id, "Must reference a message", path)
            return None
        name = self._message_name(message_ref, required=True, at_deploy=at_deploy)
        correlation_key = None
        if subscription:
            message = self.definitions.messages[message_ref]
            found = [ext for ext_name, ext in zeebe_extensions(message) if ext_name == "subscription"]
            if len(found) != 1:
                self.problems.add_once(
                    message_ref, "Must have exactly one zeebe:subscription extension element"
                )
            else:
                raw = found[0].get("correlationKey")
                subscription_path = "extensionElements > subscription"
                if not raw:
                    self.problems.add_once(
                        message_ref,
                        "Attribute 'correlationKey' must be present and not empty",
                        subscription_path,
                    )
                else:
                    correlation_key, problems = expressions.check_expression(
                        raw, mandatory=True, non_static=True, attribute="correlationKey"
                    )
                    for problem in problems:
                        self.problems.add_once(message_ref, problem, subscription_path)
        if name is None:
            return None
        return MessageDefinition(message_ref=message_ref, name=name, correlation_key=correlation_key)

    def _read_message_throw_job(self, xml: ET.Element, element: Element) -> None:
        """Message intermediate throw and end events are job-based (zeebe:taskDefinition)."""
        task_definitions = [ext for name, ext in zeebe_extensions(xml) if name == "taskDefinition"]
        if len(task_definitions) != 1:
            self.problems.add(
                element.id,
                "Must have either one 'zeebe:publishMessage' or one 'zeebe:taskDefinition' extension element",
            )
            return
        self._read_job(element, task_definitions[0])
        self._read_task_headers(xml, element)

    def _read_job(self, element: Element, task_definition: ET.Element) -> None:
        element.job_type = self._expression_attribute(element, task_definition, "taskDefinition", "type")
        element.job_retries = self._expression_attribute(
            element, task_definition, "taskDefinition", "retries", default=DEFAULT_JOB_RETRIES
        )

    def _read_signal(
        self, element: Element, definition: ET.Element, *, at_deploy: bool
    ) -> SignalDefinition | None:
        signal_ref = (definition.get("signalRef") or "").strip()
        if not signal_ref or signal_ref not in self.definitions.signals:
            self.problems.add(element.id, "Must reference a signal", "signalEventDefinition")
            return None
        raw = self.definitions.signals[signal_ref].get("name")
        if not raw:
            self.problems.add_once(signal_ref, "Name must be present and not empty")
            return None
        expression, problems = expressions.check_expression(raw, mandatory=True, attribute="name")
        for problem in problems:
            self.problems.add_once(signal_ref, problem)
        if expression is None:
            return None
        if expression.is_feel and at_deploy:
            failure = _deploy_time_string(expression)
            if failure is not None:
                self.problems.add_once(
                    signal_ref, f"Expected the signal name of a signal start event {failure}"
                )
                return None
        return SignalDefinition(signal_ref=signal_ref, name=expression)

    def _read_escalation(
        self, element: Element, definition: ET.Element, *, throw: bool
    ) -> EscalationDefinition | None:
        path = "escalationEventDefinition"
        escalation_ref = (definition.get("escalationRef") or "").strip()
        if not escalation_ref:
            if throw:
                self.problems.add(element.id, "Must reference an escalation", path)
                return None
            return EscalationDefinition(escalation_ref=None, code=None)  # catch-all
        if escalation_ref not in self.definitions.escalations:
            self.problems.add(
                element.id, f"The escalationRef '{escalation_ref}' does not reference a bpmn:escalation", path
            )
            return None
        code = self.definitions.escalations[escalation_ref].get("escalationCode")
        if throw:
            if not code:
                self.problems.add_once(escalation_ref, "EscalationCode must be present and not empty")
                return None
            expression, problems = expressions.check_expression(
                code, mandatory=True, attribute="escalationCode"
            )
            self.problems.extend(element.id, problems, path)
            if expression is None:
                return None
            return EscalationDefinition(escalation_ref=escalation_ref, code=expression)
        if code and code.startswith("="):
            self.problems.add(
                element.id,
                "The escalationCode of the escalation catch event is not allowed to be an expression",
                path,
            )
            return None
        return EscalationDefinition(
            escalation_ref=escalation_ref, code=Expression.static(code) if code else None
        )
