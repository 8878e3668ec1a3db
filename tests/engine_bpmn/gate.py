"""What the deployment gate (engine.bpmn.support) should say, for tests that outlive it.

Execution engineers enable a feature by deleting its line from `support.NOT_YET_SUPPORTED`. The
tests here must not need an edit each time: an expectation names its feature, and holds only
while that feature is still gated. `WORDS` is the gate as it was first written (the messages the
parser gave before the gate existed), so an expectation keeps checking the exact text.
"""

from __future__ import annotations

from engine.bpmn import support

UNSUPPORTED = "not supported by the Fleetflow embedded engine"

#: feature -> the words its rejection starts with (the gate as first written).
WORDS: dict[str, str] = {
    "timer-start": "Timer start events are",
    "message-start": "Message start events are",
    "signal-start": "Signal start events are",
    "conditional-start": "Conditional start events are",
    "timer-intermediate-catch": "Timer intermediate catch events are",
    "message-intermediate-catch": "Message intermediate catch events are",
    "signal-intermediate-catch": "Signal intermediate catch events are",
    "link-intermediate-catch": "Link intermediate catch events are",
    "conditional-intermediate-catch": "Conditional intermediate catch events are",
    "none-intermediate-throw": "None intermediate throw events are",
    "message-intermediate-throw": "Message intermediate throw events are",
    "signal-intermediate-throw": "Signal intermediate throw events are",
    "escalation-intermediate-throw": "Escalation intermediate throw events are",
    "link-intermediate-throw": "Link intermediate throw events are",
    "compensation-intermediate-throw": "Compensation intermediate throw events are",
    "timer-boundary": "Timer boundary events are",
    "message-boundary": "Message boundary events are",
    "signal-boundary": "Signal boundary events are",
    "escalation-boundary": "Escalation boundary events are",
    "compensation-boundary": "Compensation boundary events are",
    "conditional-boundary": "Conditional boundary events are",
    "message-end": "Message end events are",
    "signal-end": "Signal end events are",
    "escalation-end": "Escalation end events are",
    "compensation-end": "Compensation end events are",
    "timer-event-sub-process": "Event subprocesses are",
    "message-event-sub-process": "Event subprocesses are",
    "error-event-sub-process": "Event subprocesses are",
    "signal-event-sub-process": "Event subprocesses are",
    "escalation-event-sub-process": "Event subprocesses are",
    "inclusive-gateway": "Elements of type 'inclusiveGateway' are",
    "event-based-gateway": "Elements of type 'eventBasedGateway' are",
    "receive-task": "Elements of type 'receiveTask' are",
    "send-task": "Elements of type 'sendTask' are",
    "job-script-task": "Elements of type 'scriptTask' are",
    "feel-script-task": "Elements of type 'scriptTask' are",
    "job-business-rule-task": "Elements of type 'businessRuleTask' are",
    "decision-business-rule-task": "Elements of type 'businessRuleTask' are",
    "zeebe-user-task": "Zeebe user tasks (zeebe:userTask) are",
    "linked-form": "Linked forms (zeebe:formDefinition formId/externalReference) are",
    "multi-instance": "Multi-instance activities are",
    "compensation-handler": "Compensation handlers (isForCompensation) are",
}


def is_gated(feature: str) -> bool:
    """True while the execution cannot run `feature` (its line is still in the gate)."""
    return feature in support.NOT_YET_SUPPORTED


def message(feature: str) -> str:
    """The rejection message of a gated feature, exactly as first written."""
    return f"{WORDS[feature]} {UNSUPPORTED}{support.HINTS.get(feature, '')}"


def expected(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(element identifier, message) for each (identifier, feature) still gated, in order."""
    return [(identifier, message(feature)) for identifier, feature in problems if is_gated(feature)]
