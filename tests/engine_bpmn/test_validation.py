"""Every validation rule rejects with a message naming the element (Zeebe's text where Zeebe
has one), and everything unsupported is rejected rather than ignored."""

from __future__ import annotations

import pytest

from engine.bpmn import BpmnValidationError, parse_bpmn
from tests.engine_bpmn import gate
from tests.engine_bpmn.snippets import (
    around,
    document,
    flow,
    problems_of,
    rejection,
    service_task,
)

UNSUPPORTED = "not supported by the Fleetflow embedded engine"
ERRORS = '<bpmn:error id="err-a" errorCode="A" /><bpmn:error id="err-a2" errorCode="A" />'


def linear(middle: str, element_id: str) -> str:
    return around(middle, element_id, element_id)


# --- definitions and processes ------------------------------------------------------------


def test_no_executable_process() -> None:
    assert problems_of('<bpmn:startEvent id="s" />', executable="false") == [
        ("definitions", "Must contain at least one executable process")
    ]


def test_missing_is_executable_means_not_executable() -> None:
    content = document('<bpmn:startEvent id="s" />').replace(b' isExecutable="true"', b"")
    assert rejection(content).problems[0].message == "Must contain at least one executable process"


def test_not_a_bpmn_document() -> None:
    error = rejection(b'<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" />', "x.dmn")
    assert error.problems[0].message.startswith("Expected a BPMN document (root element 'definitions'")


def test_duplicate_ids() -> None:
    body = '<bpmn:startEvent id="same" /><bpmn:endEvent id="same" />'
    assert ("same", "The id 'same' is used by more than one element") in problems_of(body)


def test_invalid_id() -> None:
    body = linear('<bpmn:task id="1bad" />', "1bad")
    assert ("1bad", "Attribute 'id' must be a valid XML name (NCName), but is '1bad'") in problems_of(body)


def test_missing_id() -> None:
    assert ("p > task", "Attribute 'id' must be present and not empty") in problems_of(
        '<bpmn:startEvent id="s" /><bpmn:task />'
    )


# --- start and end events ---------------------------------------------------------------------


def test_process_without_start_event() -> None:
    assert problems_of('<bpmn:endEvent id="e" />') == [("p", "Must have at least one start event")]


def test_two_none_start_events() -> None:
    body = '<bpmn:startEvent id="s1" /><bpmn:startEvent id="s2" />'
    assert problems_of(body) == [("p", "Multiple none start events are not allowed")]


def deployment_problems(body: str) -> list[tuple[str | None, str]]:
    """What a deployment of `body` is refused with ([] when it deploys)."""
    try:
        parse_bpmn("test.bpmn", document(body))
    except BpmnValidationError as error:
        return [(problem.element_identifier, problem.message) for problem in error.problems]
    return []


def test_only_typed_start_events() -> None:
    """A process may start by timer (or message, signal) only: it has no none start event."""
    body = (
        '<bpmn:startEvent id="timer-start"><bpmn:timerEventDefinition><bpmn:timeCycle>R/P1D'
        "</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>"
    )
    (model,) = parse_bpmn("test.bpmn", document(body), check_support=False)
    assert model.none_start_event is None and [e.id for e in model.process.start_events] == ["timer-start"]
    assert deployment_problems(body) == gate.expected([("timer-start", "timer-start")])


def test_start_event_with_two_definitions() -> None:
    body = (
        '<bpmn:startEvent id="s"><bpmn:messageEventDefinition /><bpmn:timerEventDefinition />'
        "</bpmn:startEvent>"
    )
    assert ("s", "Start event can't have more than one type") in problems_of(body)


def test_end_event_with_outgoing_flow() -> None:
    body = (
        '<bpmn:startEvent id="s" /><bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />'
        + flow("f1", "s", "e1")
        + flow("f2", "e1", "e2")
    )
    assert problems_of(body) == [
        ("e1", "End events must not have outgoing sequence flows to other elements.")
    ]


def test_error_end_event_without_error() -> None:
    body = linear('<bpmn:endEvent id="x"><bpmn:errorEventDefinition /></bpmn:endEvent>', "x")
    assert ("x > errorEventDefinition", "Must reference an error") in problems_of(body)


def test_error_end_event_with_unknown_error() -> None:
    body = linear('<bpmn:endEvent id="x"><bpmn:errorEventDefinition errorRef="nope" /></bpmn:endEvent>', "x")
    assert ("x > errorEventDefinition", "Must reference an error") in problems_of(body)


def test_error_end_event_with_empty_error_code() -> None:
    body = linear('<bpmn:endEvent id="x"><bpmn:errorEventDefinition errorRef="e" /></bpmn:endEvent>', "x")
    assert ("x > errorEventDefinition", "ErrorCode must be present and not empty") in problems_of(
        body, extra='<bpmn:error id="e" />'
    )


def test_end_event_with_two_definitions() -> None:
    body = linear(
        '<bpmn:endEvent id="x"><bpmn:terminateEventDefinition /><bpmn:terminateEventDefinition /></bpmn:endEvent>',
        "x",
    )
    assert ("x", "Must have at most one event definition") in problems_of(body)


# --- sequence flows ---------------------------------------------------------------------------


def test_flow_target_missing() -> None:
    body = '<bpmn:startEvent id="s" />' + flow("f", "s", "no_such_task")
    assert problems_of(body) == [("f", "SequenceFlow has targetRef 'no_such_task'  which cannot be resolved")]


def test_flow_source_missing_and_absent_attributes() -> None:
    body = (
        '<bpmn:startEvent id="s" />'
        + flow("f", "ghost", "s")
        + '<bpmn:sequenceFlow id="g" sourceRef="s" /><bpmn:sequenceFlow id="h" targetRef="s" />'
    )
    assert problems_of(body) == [
        ("f", "SequenceFlow has sourceRef 'ghost' which cannot be resolved"),
        ("g", "SequenceFlow is missing required attribute targetRef"),
        ("h", "SequenceFlow is missing required attribute sourceRef"),
    ]


def test_flow_across_scopes() -> None:
    sub = '<bpmn:subProcess id="sub"><bpmn:startEvent id="inner-start" /></bpmn:subProcess>'
    body = around(sub, "sub", "sub") + flow("jump", "start", "inner-start")
    assert problems_of(body) == [
        (
            "jump",
            "A sequence flow must connect two elements of the scope it is declared in ('p'), "
            "but 'inner-start' belongs to 'sub'",
        )
    ]


def test_condition_outside_gateway() -> None:
    body = '<bpmn:startEvent id="s" /><bpmn:endEvent id="e" />' + flow("f", "s", "e", "=true")
    assert problems_of(body) == [
        ("s", "Conditional sequence flows are only supported at exclusive or inclusive gateway")
    ]


# --- exclusive gateways --------------------------------------------------------------------


def gateway(default: str | None, flows: str) -> str:
    default_attribute = f' default="{default}"' if default else ""
    return (
        f'<bpmn:startEvent id="s" /><bpmn:exclusiveGateway id="gw"{default_attribute} />'
        '<bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />' + flow("in", "s", "gw") + flows
    )


def test_gateway_flow_without_condition() -> None:
    body = gateway(None, flow("a", "gw", "e1", "=x") + flow("b", "gw", "e2"))
    assert problems_of(body) == [("b", "Must have a condition or be default flow")]


def test_gateway_single_unconditional_flow_is_fine() -> None:
    from tests.engine_bpmn.snippets import parse_one

    model = parse_one(gateway(None, flow("a", "gw", "e1")))
    assert model.element("gw").default_flow is None


def test_default_flow_must_start_at_gateway() -> None:
    body = gateway("in", flow("a", "gw", "e1", "=x") + flow("b", "gw", "e2", "=y"))
    assert problems_of(body) == [("gw", "Default flow must start at gateway")]


def test_default_flow_must_exist() -> None:
    body = gateway("ghost", flow("a", "gw", "e1", "=x"))
    assert problems_of(body) == [("gw", "Default flow 'ghost' cannot be resolved")]


def test_static_condition_is_rejected() -> None:
    body = gateway("b", flow("a", "gw", "e1", "price &gt; 0") + flow("b", "gw", "e2"))
    assert problems_of(body) == [
        (
            "a > conditionExpression",
            "Expected expression but found static value 'price > 0'. "
            "An expression must start with '=' (e.g. '=price > 0').",
        )
    ]


def test_empty_condition_is_rejected() -> None:
    body = gateway("b", flow("a", "gw", "e1", "  ") + flow("b", "gw", "e2"))
    assert problems_of(body) == [
        ("a > conditionExpression", "Attribute 'condition' must be present and not empty")
    ]


def test_unparsable_condition_is_rejected() -> None:
    body = gateway("b", flow("a", "gw", "e1", "= x &gt;&gt; ") + flow("b", "gw", "e2"))
    ((identifier, message),) = problems_of(body)
    assert identifier == "a > conditionExpression"
    assert message.startswith("failed to parse expression ' x >>': ")


# --- service tasks and job definitions ------------------------------------------------------


def test_service_task_without_task_definition() -> None:
    body = linear('<bpmn:serviceTask id="t" />', "t")
    assert problems_of(body) == [("t", "Must have exactly one 'zeebe:taskDefinition' extension element")]


def test_service_task_with_two_task_definitions() -> None:
    task = service_task("t", extra='<zeebe:taskDefinition type="other" />')
    assert problems_of(linear(task, "t")) == [
        ("t", "Must have exactly one 'zeebe:taskDefinition' extension element")
    ]


@pytest.mark.parametrize("definition", ['<zeebe:taskDefinition type="" />', "<zeebe:taskDefinition />"])
def test_job_type_missing_or_empty(definition: str) -> None:
    task = f'<bpmn:serviceTask id="t"><bpmn:extensionElements>{definition}</bpmn:extensionElements></bpmn:serviceTask>'
    assert problems_of(linear(task, "t")) == [
        ("t > extensionElements > taskDefinition", "Attribute 'type' must be present and not empty")
    ]


def test_empty_retries() -> None:
    task = service_task("t").replace("/>", ' retries="" />', 1)
    assert problems_of(linear(task, "t")) == [
        ("t > extensionElements > taskDefinition", "Attribute 'retries' must be present and not empty")
    ]


def test_unparsable_job_type_expression() -> None:
    task = service_task("t", job_type="=1 +")
    ((identifier, message),) = problems_of(linear(task, "t"))
    assert identifier == "t > extensionElements > taskDefinition"
    assert message.startswith("failed to parse expression '1 +': ")
    assert message.endswith(" (attribute 'type')")


def test_reserved_and_duplicate_task_headers() -> None:
    task = service_task(
        "t",
        extra='<zeebe:taskHeaders><zeebe:header key="io.camunda.zeebe:assignee" value="x" />'
        '<zeebe:header key="k" value="1" /><zeebe:header key="k" value="2" /></zeebe:taskHeaders>',
    )
    assert problems_of(linear(task, "t")) == [
        (
            "t > extensionElements > taskHeaders",
            "Attribute 'key' contains 'io.camunda.zeebe:assignee', but header keys starting with "
            "'io.camunda.zeebe:' are reserved for internal use.",
        ),
        ("t > extensionElements > taskHeaders", "Headers contain duplicate entries for key 'k'"),
    ]


# --- variable mappings -----------------------------------------------------------------------


def mapping_task(mappings: str) -> str:
    return linear(service_task("t", extra=f"<zeebe:ioMapping>{mappings}</zeebe:ioMapping>"), "t")


def test_static_output_source_is_rejected() -> None:
    assert problems_of(mapping_task('<zeebe:output source="literal" target="x" />')) == [
        (
            "t > extensionElements > ioMapping > output",
            "Expected expression but found static value 'literal'. An expression must start with '=' (e.g. '=literal').",
        )
    ]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("", "Expected path expression but not found."),
        (
            "a-b",
            "Expected path expression 'a-b' but doesn't match the pattern "
            "'[a-zA-Z_][a-zA-Z0-9_]*(\\.[a-zA-Z_][a-zA-Z0-9_]*)*'.",
        ),
        (
            "null",
            "Expected path expression 'null' but is one of the reserved words "
            "(null, true, false, function, if, then, else, for, between, instance, of).",
        ),
    ],
)
def test_bad_mapping_targets(target: str, message: str) -> None:
    assert problems_of(mapping_task(f'<zeebe:input source="=1" target="{target}" />')) == [
        ("t > extensionElements > ioMapping > input", message)
    ]


def test_missing_mapping_source() -> None:
    assert problems_of(mapping_task('<zeebe:input target="x" />')) == [
        ("t > extensionElements > ioMapping > input", "Expected expression but not found.")
    ]


def test_unparsable_mapping_source() -> None:
    ((identifier, message),) = problems_of(mapping_task('<zeebe:output source="=iban: 1" target="x" />'))
    assert identifier == "t > extensionElements > ioMapping > output"
    assert message.startswith("failed to parse expression 'iban: 1': ")
    assert message.endswith(" (attribute 'source')")


def test_unparsable_retries_and_assignee_name_their_attribute() -> None:
    task = service_task("t").replace("/>", ' retries="=(" />', 1)
    ((identifier, message),) = problems_of(linear(task, "t"))
    assert identifier == "t > extensionElements > taskDefinition"
    assert message.startswith("failed to parse expression '(': ") and message.endswith(
        "(attribute 'retries')"
    )
    ((identifier, message),) = problems_of(user_task('<zeebe:assignmentDefinition assignee="=a +" />'))
    assert identifier == "u > extensionElements > assignmentDefinition"
    assert message.endswith("(attribute 'assignee')")


def test_input_mappings_only_on_activities() -> None:
    body = (
        '<bpmn:startEvent id="s"><bpmn:extensionElements><zeebe:ioMapping><zeebe:input source="=1" target="x" />'
        "</zeebe:ioMapping></bpmn:extensionElements></bpmn:startEvent>"
    )
    assert problems_of(body) == [
        (
            "s > extensionElements > ioMapping > input",
            "Input mappings are not supported on elements of type START_EVENT by the Fleetflow embedded engine",
        )
    ]


def test_two_io_mappings() -> None:
    task = service_task("t", extra="<zeebe:ioMapping /><zeebe:ioMapping />")
    assert problems_of(linear(task, "t")) == [
        (
            "t",
            "Must have exactly one 'zeebe:ioMapping' extension element when exists. "
            "Please check process definition XML and retain only one extension element.",
        )
    ]


def test_two_assignment_definitions() -> None:
    extensions = '<zeebe:assignmentDefinition assignee="a" /><zeebe:assignmentDefinition assignee="b" />'
    assert problems_of(user_task(extensions)) == [
        (
            "u",
            "Must have exactly one 'zeebe:assignmentDefinition' extension element when exists. "
            "Please check process definition XML and retain only one extension element.",
        )
    ]


# --- user tasks -----------------------------------------------------------------------------


def user_task(extensions: str) -> str:
    return linear(
        f'<bpmn:userTask id="u"><bpmn:extensionElements>{extensions}</bpmn:extensionElements></bpmn:userTask>',
        "u",
    )


def test_zeebe_user_task_is_rejected() -> None:
    found = deployment_problems(user_task("<zeebe:userTask />"))
    assert found == gate.expected([("u > extensionElements > userTask", "zeebe-user-task")])
    if gate.is_gated("zeebe-user-task"):
        assert found[0][1] == (
            f"Zeebe user tasks (zeebe:userTask) are {UNSUPPORTED}; remove zeebe:userTask to run it as a "
            "job-based user task (job type 'io.camunda.zeebe:userTask')"
        )


def test_bad_static_candidate_groups_and_due_date() -> None:
    extensions = (
        '<zeebe:assignmentDefinition candidateGroups="a,,b" />'
        '<zeebe:taskSchedule dueDate="tomorrow" followUpDate="2026-01-01T10:00:00" />'
    )
    assert problems_of(user_task(extensions)) == [
        (
            "u > extensionElements > assignmentDefinition",
            "Expected static value to be a list of comma-separated values, e.g. 'a,b,c', but found 'a,,b'.",
        ),
        (
            "u > extensionElements > taskSchedule",
            "Expected static value to be a valid DateTime String, e.g. '2023-03-02T15:35+02:00', but found 'tomorrow'.",
        ),
        (
            "u > extensionElements > taskSchedule",
            "Expected static value to be a valid DateTime String, e.g. '2023-03-02T15:35+02:00', "
            "but found '2026-01-01T10:00:00'.",
        ),
    ]


def test_linked_form_is_rejected() -> None:
    assert deployment_problems(user_task('<zeebe:formDefinition formId="f" />')) == gate.expected(
        [("u > extensionElements > formDefinition", "linked-form")]
    )


# --- call activities --------------------------------------------------------------------------


def call_activity(called: str) -> str:
    return linear(
        f'<bpmn:callActivity id="c"><bpmn:extensionElements>{called}</bpmn:extensionElements></bpmn:callActivity>',
        "c",
    )


def test_call_activity_without_called_element() -> None:
    assert problems_of(call_activity("")) == [
        ("c", "Must have exactly one 'zeebe:calledElement' extension element")
    ]


def test_call_activity_with_empty_process_id() -> None:
    assert problems_of(call_activity('<zeebe:calledElement processId="" />')) == [
        ("c > extensionElements > calledElement", "Attribute 'processId' must be present and not empty")
    ]


def test_call_activity_binding_other_than_latest() -> None:
    assert problems_of(call_activity('<zeebe:calledElement processId="x" bindingType="deployment" />')) == [
        (
            "c > extensionElements > calledElement",
            f"Call activities with bindingType 'deployment' (only 'latest') are {UNSUPPORTED}",
        )
    ]


def test_call_activity_bad_boolean() -> None:
    assert problems_of(
        call_activity('<zeebe:calledElement processId="x" propagateAllChildVariables="yes" />')
    ) == [
        (
            "c > extensionElements > calledElement",
            "Attribute 'propagateAllChildVariables' must be 'true' or 'false', but is 'yes'",
        )
    ]


# --- subprocesses --------------------------------------------------------------------------


def test_subprocess_without_start_event() -> None:
    body = linear(
        '<bpmn:subProcess id="sub"><bpmn:task id="inner" /></bpmn:subProcess>',
        "sub",
    )
    assert problems_of(body) == [("sub", "Must have exactly one start event")]


def test_subprocess_with_two_start_events() -> None:
    body = linear(
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="a" /><bpmn:startEvent id="b" /></bpmn:subProcess>',
        "sub",
    )
    assert problems_of(body) == [("sub", "Must have exactly one start event")]


def test_subprocess_with_typed_start_event() -> None:
    body = linear(
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="a"><bpmn:messageEventDefinition /></bpmn:startEvent>'
        "</bpmn:subProcess>",
        "sub",
    )
    assert problems_of(body) == [("a", "Start events in subprocesses must be of type none")]


# --- boundary events ----------------------------------------------------------------------------


def with_boundary(boundary: str, extra_body: str = "") -> str:
    return linear(service_task("t") + boundary + extra_body, "t")


def test_non_interrupting_error_boundary() -> None:
    body = with_boundary(
        '<bpmn:boundaryEvent id="b" attachedToRef="t" cancelActivity="false"><bpmn:errorEventDefinition />'
        "</bpmn:boundaryEvent>"
    )
    assert problems_of(body) == [("b", "Non-Interrupting event of this type is not allowed")]


@pytest.mark.parametrize("attached", ["", 'attachedToRef="ghost"', 'attachedToRef="start"'])
def test_boundary_not_attached_to_an_activity(attached: str) -> None:
    body = with_boundary(
        f'<bpmn:boundaryEvent id="b" {attached}><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
    )
    assert problems_of(body) == [("b", "Must be attached to an activity")]


def test_boundary_without_definition() -> None:
    body = with_boundary('<bpmn:boundaryEvent id="b" attachedToRef="t" />')
    assert problems_of(body) == [("b", "Must have exactly one event definition")]


def test_boundary_with_unknown_error() -> None:
    body = with_boundary(
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:errorEventDefinition errorRef="ghost" /></bpmn:boundaryEvent>'
    )
    assert problems_of(body) == [
        ("b > errorEventDefinition", "The errorRef 'ghost' does not reference a bpmn:error")
    ]


def test_boundary_error_code_expression() -> None:
    body = with_boundary(
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:errorEventDefinition errorRef="e" /></bpmn:boundaryEvent>'
    )
    assert problems_of(body, extra='<bpmn:error id="e" errorCode="=code" />') == [
        (
            "b > errorEventDefinition",
            "The errorCode of the error catch event is not allowed to be an expression",
        )
    ]


def test_boundary_error_without_code() -> None:
    body = with_boundary(
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:errorEventDefinition errorRef="e" /></bpmn:boundaryEvent>'
    )
    assert problems_of(body, extra='<bpmn:error id="e" />') == [
        (
            "b > errorEventDefinition",
            "The referenced error 'e' must have an errorCode (leave out errorRef to catch all errors)",
        )
    ]


def test_duplicate_error_codes_on_one_activity() -> None:
    body = with_boundary(
        '<bpmn:boundaryEvent id="b1" attachedToRef="t"><bpmn:errorEventDefinition errorRef="err-a" /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="b2" attachedToRef="t"><bpmn:errorEventDefinition errorRef="err-a2" /></bpmn:boundaryEvent>'
    )
    assert problems_of(body, extra=ERRORS) == [
        ("t", "Multiple error catch events with the same error code 'A' are not supported on the same scope.")
    ]


def test_two_catch_all_boundaries() -> None:
    body = with_boundary(
        '<bpmn:boundaryEvent id="b1" attachedToRef="t"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="b2" attachedToRef="t"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
    )
    assert problems_of(body) == [
        (
            "t",
            "The same scope can not contain more than one error catch event without error code. "
            "An error catch event without error code catches all errors.",
        )
    ]


def test_boundary_with_incoming_flow() -> None:
    body = with_boundary(
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>',
        flow("into-boundary", "start", "b"),
    )
    assert ("b", "Cannot have incoming sequence flows") in problems_of(body)


# --- unsupported elements -------------------------------------------------------------------

UNSUPPORTED_CASES = {
    "timer catch": (
        '<bpmn:intermediateCatchEvent id="x"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M'
        "</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>",
        "x",
        "Timer intermediate catch events are",
    ),
    "message catch": (
        '<bpmn:intermediateCatchEvent id="x"><bpmn:messageEventDefinition /></bpmn:intermediateCatchEvent>',
        "x",
        "Message intermediate catch events are",
    ),
    "signal throw": (
        '<bpmn:intermediateThrowEvent id="x"><bpmn:signalEventDefinition /></bpmn:intermediateThrowEvent>',
        "x",
        "Signal intermediate throw events are",
    ),
    "escalation end": (
        '<bpmn:endEvent id="x"><bpmn:escalationEventDefinition /></bpmn:endEvent>',
        "x",
        "Escalation end events are",
    ),
    "link throw": (
        '<bpmn:intermediateThrowEvent id="x"><bpmn:linkEventDefinition name="L" /></bpmn:intermediateThrowEvent>',
        "x",
        "Link intermediate throw events are",
    ),
    "compensation throw": (
        '<bpmn:intermediateThrowEvent id="x"><bpmn:compensateEventDefinition /></bpmn:intermediateThrowEvent>',
        "x",
        "Compensation intermediate throw events are",
    ),
    "none throw": ('<bpmn:intermediateThrowEvent id="x" />', "x", "None intermediate throw events are"),
    "conditional catch": (
        '<bpmn:intermediateCatchEvent id="x"><bpmn:conditionalEventDefinition /></bpmn:intermediateCatchEvent>',
        "x",
        "Conditional intermediate catch events are",
    ),
    "inclusive gateway": ('<bpmn:inclusiveGateway id="x" />', "x", "Elements of type 'inclusiveGateway' are"),
    "event-based gateway": (
        '<bpmn:eventBasedGateway id="x" />',
        "x",
        "Elements of type 'eventBasedGateway' are",
    ),
    "complex gateway": ('<bpmn:complexGateway id="x" />', "x", "Elements of type 'complexGateway' are"),
    "script task": ('<bpmn:scriptTask id="x" />', "x", "Elements of type 'scriptTask' are"),
    "business rule task": (
        '<bpmn:businessRuleTask id="x" />',
        "x",
        "Elements of type 'businessRuleTask' are",
    ),
    "send task": ('<bpmn:sendTask id="x" />', "x", "Elements of type 'sendTask' are"),
    "receive task": ('<bpmn:receiveTask id="x" />', "x", "Elements of type 'receiveTask' are"),
    "ad-hoc subprocess": ('<bpmn:adHocSubProcess id="x" />', "x", "Elements of type 'adHocSubProcess' are"),
    "transaction": ('<bpmn:transaction id="x" />', "x", "Elements of type 'transaction' are"),
    "unknown bpmn element": (
        '<bpmn:choreographyTask id="x" />',
        "x",
        "Elements of type 'choreographyTask' are",
    ),
    "event subprocess": (
        '<bpmn:subProcess id="x" triggeredByEvent="true"><bpmn:startEvent id="es">'
        "<bpmn:errorEventDefinition /></bpmn:startEvent></bpmn:subProcess>",
        "x",
        "Event subprocesses are",
    ),
    "multi-instance": (
        '<bpmn:task id="x"><bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements>'
        '<zeebe:loopCharacteristics inputCollection="=[1, 2]" /></bpmn:extensionElements>'
        "</bpmn:multiInstanceLoopCharacteristics></bpmn:task>",
        "x > multiInstanceLoopCharacteristics",
        "Multi-instance activities are",
    ),
    "standard loop": (
        '<bpmn:task id="x"><bpmn:standardLoopCharacteristics /></bpmn:task>',
        "x",
        "Loop activities (standardLoopCharacteristics) are",
    ),
    "compensation handler": (
        '<bpmn:task id="x" isForCompensation="true" />',
        "x",
        "Compensation handlers (isForCompensation) are",
    ),
    "execution listeners": (
        '<bpmn:task id="x"><bpmn:extensionElements><zeebe:executionListeners><zeebe:executionListener '
        'eventType="start" type="l" /></zeebe:executionListeners></bpmn:extensionElements></bpmn:task>',
        "x > extensionElements > executionListeners",
        "Execution listeners (zeebe:executionListeners) are",
    ),
    "task listeners": (
        '<bpmn:userTask id="x"><bpmn:extensionElements><zeebe:taskListeners /></bpmn:extensionElements></bpmn:userTask>',
        "x > extensionElements > taskListeners",
        "Task listeners (zeebe:taskListeners) are",
    ),
    "unknown zeebe extension": (
        '<bpmn:task id="x"><bpmn:extensionElements><zeebe:futureThing /></bpmn:extensionElements></bpmn:task>',
        "x > extensionElements > futureThing",
        "Extension element 'zeebe:futureThing' is",
    ),
    "timer boundary": (
        service_task("t")
        + '<bpmn:boundaryEvent id="x" attachedToRef="t"><bpmn:timerEventDefinition /></bpmn:boundaryEvent>',
        "x",
        "Timer boundary events are",
    ),
    "message start": (
        '<bpmn:startEvent id="x"><bpmn:messageEventDefinition /></bpmn:startEvent>',
        "x",
        "Message start events are",
    ),
    "signal start": (
        '<bpmn:startEvent id="x"><bpmn:signalEventDefinition /></bpmn:startEvent>',
        "x",
        "Signal start events are",
    ),
}


#: The gate feature of each case (engine.bpmn.support); None: refused by the parser for good.
CASE_FEATURES = {
    "timer catch": "timer-intermediate-catch",
    "message catch": "message-intermediate-catch",
    "signal throw": "signal-intermediate-throw",
    "escalation end": "escalation-end",
    "link throw": "link-intermediate-throw",
    "compensation throw": "compensation-intermediate-throw",
    "none throw": "none-intermediate-throw",
    "conditional catch": "conditional-intermediate-catch",
    "inclusive gateway": "inclusive-gateway",
    "event-based gateway": "event-based-gateway",
    "script task": "feel-script-task",
    "business rule task": "decision-business-rule-task",
    "send task": "send-task",
    "receive task": "receive-task",
    "event subprocess": "error-event-sub-process",
    "multi-instance": "multi-instance",
    "compensation handler": "compensation-handler",
    "timer boundary": "timer-boundary",
    "message start": "message-start",
    "signal start": "signal-start",
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED_CASES))
def test_unsupported_is_rejected_by_name(case: str) -> None:
    element, identifier, what = UNSUPPORTED_CASES[case]
    body = '<bpmn:startEvent id="start" />' + element
    if case in ("message start", "signal start"):
        body = element  # the only start event is the typed one
    found = deployment_problems(body)
    feature = CASE_FEATURES.get(case)
    if feature is None or gate.is_gated(feature):
        assert (identifier, f"{what} {UNSUPPORTED}") in found, found
        if feature is not None:
            assert gate.message(feature) == f"{what} {UNSUPPORTED}"
    else:  # the execution runs it now: whatever else is wrong, the gate says nothing
        assert not [message for _, message in found if message.startswith(what)], found


def test_every_unsupported_case_is_classified() -> None:
    assert set(CASE_FEATURES) <= set(UNSUPPORTED_CASES)
    assert all(feature in gate.WORDS for feature in CASE_FEATURES.values())


SCRIPT_TASK = (
    '<bpmn:scriptTask id="{id}"><bpmn:extensionElements><zeebe:script expression="=1 + 1" '
    'resultVariable="two" /></bpmn:extensionElements></bpmn:scriptTask>'
)


def test_unsupported_element_does_not_cascade_into_flow_errors() -> None:
    """Flows to and from a gated element are not reported: only the gate speaks."""
    body = linear(SCRIPT_TASK.format(id="script"), "script")
    assert deployment_problems(body) == gate.expected([("script", "feel-script-task")])


def test_all_problems_are_reported_at_once() -> None:
    """Validation problems first (in document order), then what the execution cannot run."""
    body = (
        '<bpmn:startEvent id="s" /><bpmn:serviceTask id="t1" />'
        + SCRIPT_TASK.format(id="t2")
        + '<bpmn:scriptTask id="t3" />'
        + flow("f1", "s", "t1")
        + flow("f2", "t1", "missing")
    )
    assert problems_of(body) == [
        ("t1", "Must have exactly one 'zeebe:taskDefinition' extension element"),
        ("t3", "Must have either one 'zeebe:script' or one 'zeebe:taskDefinition' extension element"),
        ("f2", "SequenceFlow has targetRef 'missing'  which cannot be resolved"),
        *gate.expected([("t2", "feel-script-task"), ("t3", "feel-script-task")]),
    ]


def test_unsupported_in_a_non_executable_process_is_not_read() -> None:
    from engine.bpmn import parse_bpmn

    content = document('<bpmn:startEvent id="s" />').replace(
        b"</bpmn:definitions>",
        b'<bpmn:process id="doc" isExecutable="false"><bpmn:scriptTask id="script" /></bpmn:process>'
        b"</bpmn:definitions>",
    )
    assert [m.bpmn_process_id for m in parse_bpmn("mixed.bpmn", content)] == ["p"]


def test_boundary_declared_in_another_scope_than_its_activity() -> None:
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="inner-start" />'
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
        "</bpmn:subProcess>"
    )
    body = around(service_task("t") + sub + flow("mid", "t", "sub"), "t", "sub")
    assert problems_of(body) == [
        ("b", "Must be declared in the same scope as the activity it is attached to")
    ]
