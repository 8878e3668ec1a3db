"""The deployment gate: which parsed BPMN features the execution cannot run yet.

The parser reads every element of Zeebe's BPMN coverage into the typed model, but a deployment
must not be accepted if the engine would then fail to run it. `NOT_YET_SUPPORTED` lists each
feature the execution does not run, with the words its rejection starts with; the rejection
reads "<words> not supported by the Fleetflow embedded engine", naming the element.

When you make a feature run (and test it through real clients), delete its line below: that
one-line edit is all the gate needs. `features_of(element)` says which features an element
uses; keep it in step if you split a feature.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.bpmn.errors import Problem
from engine.bpmn.model import Element, ElementType, EventType

ENGINE_NAME = "the Fleetflow embedded engine"

#: feature -> the start of its rejection message ("<...> not supported by <engine>").
#: Delete a line when the execution runs that feature.
NOT_YET_SUPPORTED: dict[str, str] = {
    # start events of a process
    "conditional-start": "Conditional start events are",  # not in Zeebe 8.5 either
    # intermediate catch events
    "conditional-intermediate-catch": "Conditional intermediate catch events are",  # not in Zeebe 8.5
    # intermediate throw events
    # boundary events (error boundary events run)
    "conditional-boundary": "Conditional boundary events are",  # not in Zeebe 8.5
    # end events (none, terminate and error end events run)
    # event subprocesses, by the kind of their start event
    # gateways
    # tasks
    "zeebe-user-task": "Zeebe user tasks (zeebe:userTask) are",
    "linked-form": "Linked forms (zeebe:formDefinition formId/externalReference) are",
    # activity markers
}

#: What to say after "not supported by <engine>" for a feature, where there is a way out.
HINTS: dict[str, str] = {
    "zeebe-user-task": (
        "; remove zeebe:userTask to run it as a job-based user task (job type 'io.camunda.zeebe:userTask')"
    ),
}

#: The feature name of each event type (the kind part of "timer-start", "message-end"...).
_EVENT_KIND = {
    EventType.TIMER: "timer",
    EventType.MESSAGE: "message",
    EventType.SIGNAL: "signal",
    EventType.ERROR: "error",
    EventType.ESCALATION: "escalation",
    EventType.LINK: "link",
    EventType.COMPENSATION: "compensation",
    EventType.CONDITIONAL: "conditional",
    EventType.TERMINATE: "terminate",
    EventType.NONE: "none",
}
_POSITION = {
    ElementType.INTERMEDIATE_CATCH_EVENT: "intermediate-catch",
    ElementType.INTERMEDIATE_THROW_EVENT: "intermediate-throw",
    ElementType.BOUNDARY_EVENT: "boundary",
    ElementType.END_EVENT: "end",
}


def features_of(element: Element) -> list[tuple[str, str | None]]:
    """The features `element` uses, each with the path inside the element to name in a
    rejection (None: the element itself). Features that always run are included too
    ("none-end", "error-boundary"...), so the list describes the element completely."""
    features: list[tuple[str, str | None]] = []
    element_type = element.element_type
    kind = _EVENT_KIND.get(element.event_type)
    if element_type is ElementType.START_EVENT and kind is not None:
        # Only process start events: an event subprocess is reported by the kind of its start
        # event, and a typed start event in an embedded subprocess is invalid anyway.
        scope = element.flow_scope
        if scope is not None and scope.element_type is ElementType.PROCESS:
            features.append((f"{kind}-start", None))
    elif element_type in _POSITION and kind is not None:
        features.append((f"{kind}-{_POSITION[element_type]}", None))
    elif element_type is ElementType.EVENT_SUB_PROCESS:
        start_kinds = [_EVENT_KIND.get(start.event_type) for start in element.start_events]
        for start_kind in dict.fromkeys(start_kinds):
            if start_kind is not None:
                features.append((f"{start_kind}-event-sub-process", None))
    elif element_type is ElementType.INCLUSIVE_GATEWAY:
        features.append(("inclusive-gateway", None))
    elif element_type is ElementType.EVENT_BASED_GATEWAY:
        features.append(("event-based-gateway", None))
    elif element_type is ElementType.RECEIVE_TASK:
        features.append(("receive-task", None))
    elif element_type is ElementType.SEND_TASK:
        features.append(("send-task", None))
    elif element_type is ElementType.SCRIPT_TASK:
        features.append(("job-script-task" if element.job_type is not None else "feel-script-task", None))
    elif element_type is ElementType.BUSINESS_RULE_TASK:
        features.append(
            (
                "job-business-rule-task" if element.job_type is not None else "decision-business-rule-task",
                None,
            )
        )
    elif element_type is ElementType.USER_TASK and element.zeebe_user_task:
        features.append(("zeebe-user-task", "extensionElements > userTask"))
    if element.form_id is not None or element.external_form_reference is not None:
        features.append(("linked-form", "extensionElements > formDefinition"))
    if element.multi_instance is not None:
        features.append(("multi-instance", "multiInstanceLoopCharacteristics"))
    if element.is_for_compensation:
        features.append(("compensation-handler", None))
    return features


def unsupported_problems(elements: Iterable[Element]) -> list[Problem]:
    """One problem per feature of `elements` that the execution cannot run yet, in order."""
    problems: list[Problem] = []
    for element in elements:
        for feature, path in features_of(element):
            words = NOT_YET_SUPPORTED.get(feature)
            if words is not None:
                message = f"{words} not supported by {ENGINE_NAME}{HINTS.get(feature, '')}"
                problems.append(Problem(element.id, message, path))
    return problems
