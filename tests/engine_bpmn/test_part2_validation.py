"""Zeebe's validation rules for the issue 14 elements: each broken model is rejected with
Zeebe's message (camunda/camunda zeebe/bpmn-model validators; ours where Zeebe has none),
naming the element. Parsed with check_support=False, so only validation speaks."""

from __future__ import annotations

import pytest

from engine.bpmn import BpmnValidationError, parse_bpmn
from tests.engine_bpmn.snippets import around, document, flow, service_task

MESSAGES = (
    '<bpmn:message id="msg" name="order-paid"><bpmn:extensionElements>'
    '<zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>'
    '<bpmn:message id="msg-2" name="order-paid"><bpmn:extensionElements>'
    '<zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>'
    '<bpmn:message id="nameless"><bpmn:extensionElements>'
    '<zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>'
    '<bpmn:message id="no-subscription" name="x" />'
    '<bpmn:message id="static-key" name="x"><bpmn:extensionElements>'
    '<zeebe:subscription correlationKey="order-1" /></bpmn:extensionElements></bpmn:message>'
    '<bpmn:message id="empty-key" name="x"><bpmn:extensionElements>'
    "<zeebe:subscription /></bpmn:extensionElements></bpmn:message>"
    '<bpmn:message id="needs-variables" name="=prefix + &quot;-start&quot;" />'
    '<bpmn:signal id="sig" name="stop" /><bpmn:signal id="sig-2" name="stop" /><bpmn:signal id="sig-nameless" />'
    '<bpmn:escalation id="esc" escalationCode="late" /><bpmn:escalation id="esc-codeless" />'
    '<bpmn:escalation id="esc-feel" escalationCode="=code" />'
    '<bpmn:error id="err" errorCode="broken" />'
)
JOB = '<bpmn:extensionElements><zeebe:taskDefinition type="work" /></bpmn:extensionElements>'


def problems(body: str) -> list[tuple[str | None, str]]:
    with pytest.raises(BpmnValidationError) as caught:
        parse_bpmn("rules.bpmn", document(body, extra=MESSAGES), check_support=False)
    return [(p.element_identifier, p.message) for p in caught.value.problems]


def valid(body: str) -> None:
    parse_bpmn("rules.bpmn", document(body, extra=MESSAGES), check_support=False)


def linear(middle: str, element_id: str) -> str:
    return around(middle, element_id, element_id)


def catch(event_id: str, definition: str) -> str:
    return f'<bpmn:intermediateCatchEvent id="{event_id}">{definition}</bpmn:intermediateCatchEvent>'


def timer(kind: str, text: str) -> str:
    return f"<bpmn:timerEventDefinition><bpmn:{kind}>{text}</bpmn:{kind}></bpmn:timerEventDefinition>"


def message_catch(ref: str) -> str:
    return linear(catch("x", f'<bpmn:messageEventDefinition messageRef="{ref}" />'), "x")


# --- messages --------------------------------------------------------------------------------------


def test_message_catch_must_reference_a_message() -> None:
    assert problems(linear(catch("x", "<bpmn:messageEventDefinition />"), "x")) == [
        ("x > messageEventDefinition", "Must reference a message")
    ]
    assert problems(message_catch("no-such-message")) == [
        ("x > messageEventDefinition", "Must reference a message")
    ]


def test_message_of_a_catch_event_needs_name_and_subscription() -> None:
    assert problems(message_catch("nameless")) == [("nameless", "Name must be present and not empty")]
    assert problems(message_catch("no-subscription")) == [
        ("no-subscription", "Must have exactly one zeebe:subscription extension element")
    ]
    assert problems(message_catch("static-key")) == [
        (
            "static-key > extensionElements > subscription",
            "Expected expression but found static value 'order-1'. An expression must start with '=' (e.g. '=order-1').",
        )
    ]
    assert problems(message_catch("empty-key")) == [
        (
            "empty-key > extensionElements > subscription",
            "Attribute 'correlationKey' must be present and not empty",
        )
    ]


def test_a_shared_broken_message_is_reported_once() -> None:
    middle = (
        catch("a", '<bpmn:messageEventDefinition messageRef="nameless" />')
        + catch("b", '<bpmn:messageEventDefinition messageRef="nameless" />')
        + flow("ab", "a", "b")
    )
    assert problems(around(middle, "a", "b")) == [("nameless", "Name must be present and not empty")]


def test_message_start_event_needs_no_subscription_but_a_name_known_at_deploy() -> None:
    valid(
        '<bpmn:startEvent id="s"><bpmn:messageEventDefinition messageRef="no-subscription" /></bpmn:startEvent>'
    )
    (problem,) = problems(
        '<bpmn:startEvent id="s"><bpmn:messageEventDefinition messageRef="needs-variables" /></bpmn:startEvent>'
    )
    assert problem[0] == "needs-variables"
    assert problem[1].startswith(
        "Expected the message name of a message start event to be a non-empty string"
    )


def test_message_start_events_per_message_and_name() -> None:
    same_message = (
        '<bpmn:startEvent id="s1"><bpmn:messageEventDefinition messageRef="msg" /></bpmn:startEvent>'
        '<bpmn:startEvent id="s2"><bpmn:messageEventDefinition messageRef="msg" /></bpmn:startEvent>'
    )
    assert problems(same_message) == [("msg", "A message cannot be referred by more than one start event")]
    same_name = same_message.replace(
        'id="s2"><bpmn:messageEventDefinition messageRef="msg"',
        'id="s2"><bpmn:messageEventDefinition messageRef="msg-2"',
    )
    assert problems(same_name) == [
        ("p", "Multiple message event definitions with the same name 'order-paid' are not allowed.")
    ]


def test_message_throw_events_and_send_tasks_are_jobs() -> None:
    throw = (
        '<bpmn:intermediateThrowEvent id="x"><bpmn:messageEventDefinition /></bpmn:intermediateThrowEvent>'
    )
    assert problems(linear(throw, "x")) == [
        ("x", "Must have either one 'zeebe:publishMessage' or one 'zeebe:taskDefinition' extension element")
    ]
    assert problems(linear('<bpmn:sendTask id="x" />', "x")) == [
        ("x", "Must have either one 'zeebe:publishMessage' or one 'zeebe:taskDefinition' extension element")
    ]
    end = '<bpmn:startEvent id="s" /><bpmn:endEvent id="e"><bpmn:messageEventDefinition /></bpmn:endEvent>'
    assert problems(end + flow("f", "s", "e")) == [
        ("e", "Must have either one 'zeebe:publishMessage' or one 'zeebe:taskDefinition' extension element")
    ]
    publish = (
        '<bpmn:sendTask id="x"><bpmn:extensionElements><zeebe:publishMessage correlationKey="=k" />'
        "</bpmn:extensionElements></bpmn:sendTask>"
    )
    found = problems(linear(publish, "x"))
    assert (
        "x > extensionElements > publishMessage",
        "Message publication without a job worker (zeebe:publishMessage) are not supported by the Fleetflow "
        "embedded engine",
    ) in found


def test_receive_task() -> None:
    assert problems(linear('<bpmn:receiveTask id="x" />', "x")) == [("x", "Must reference a message")]
    duplicate = (
        '<bpmn:receiveTask id="x" messageRef="msg" />'
        '<bpmn:boundaryEvent id="b" attachedToRef="x"><bpmn:messageEventDefinition messageRef="msg-2" />'
        "</bpmn:boundaryEvent>"
    )
    assert problems(linear(duplicate, "x")) == [
        ("x", "Cannot reference the same message name as a boundary event")
    ]


# --- timers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "definition",
    [
        "<bpmn:timerEventDefinition />",
        "<bpmn:timerEventDefinition><bpmn:timeDuration>PT1S</bpmn:timeDuration>"
        "<bpmn:timeDate>2026-12-02T10:00:00Z</bpmn:timeDate></bpmn:timerEventDefinition>",
    ],
)
def test_exactly_one_kind_of_timer(definition: str) -> None:
    assert problems(linear(catch("x", definition), "x")) == [
        ("x > timerEventDefinition", "Must be exactly one type of timer: timeDuration, timeDate or timeCycle")
    ]


def test_intermediate_timer_is_a_duration_or_a_date() -> None:
    assert problems(linear(catch("x", timer("timeCycle", "R/PT1S")), "x")) == [
        ("x", "Intermediate timer catch event must have either a time duration or a time date.")
    ]


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("timeDuration", "15 seconds", "Invalid timer duration expression (Invalid duration '15 seconds'"),
        (
            "timeDuration",
            "",
            "Invalid timer duration expression (Expected a duration, but the value is empty)",
        ),
        ("timeDate", "2026-12-02T10:00:00", "Invalid timer date expression (Invalid date-time"),
        (
            "timeDuration",
            "PT99999999999999999S",
            "Invalid timer duration expression (Timer duration is too large",
        ),
        ("timeDuration", "=a +", "failed to parse expression 'a +'"),
    ],
)
def test_static_timer_values_are_checked_at_deploy(kind: str, text: str, expected: str) -> None:
    found = problems(linear(catch("x", timer(kind, text)), "x"))
    assert len(found) == 1, found
    identifier, message = found[0]
    assert identifier in (f"x > timerEventDefinition > {kind}",)
    assert message.startswith(expected), message


def test_feel_timer_of_a_catch_event_is_left_for_run_time() -> None:
    valid(linear(catch("x", timer("timeDuration", "=remaining")), "x"))


def test_timer_cycles_only_where_non_interrupting() -> None:
    boundary = (
        service_task("t")
        + f'<bpmn:boundaryEvent id="b" attachedToRef="t">{timer("timeCycle", "R/PT1M")}</bpmn:boundaryEvent>'
    )
    assert problems(linear(boundary, "t")) == [
        ("b", "Interrupting timer event with time cycle is not allowed.")
    ]
    valid(linear(boundary.replace('attachedToRef="t"', 'attachedToRef="t" cancelActivity="false"'), "t"))


# --- event definitions per position ---------------------------------------------------------------------


def test_event_definitions_allowed_per_kind_of_event() -> None:
    assert problems(linear(catch("x", "<bpmn:errorEventDefinition />"), "x")) == [
        ("x", "Event definition must be one of: message, timer, signal, link, or conditional")
    ]
    assert problems(linear(catch("x", ""), "x")) == [("x", "Must have exactly one event definition")]
    two = timer("timeDuration", "PT1S") + '<bpmn:signalEventDefinition signalRef="sig" />'
    assert problems(linear(catch("x", two), "x")) == [("x", "Must have exactly one event definition")]
    boundary = service_task("t") + (
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:terminateEventDefinition /></bpmn:boundaryEvent>'
    )
    assert problems(linear(boundary, "t")) == [
        ("b", "Boundary events must be one of: timer, message, error, signal, escalation")
    ]
    end = (
        '<bpmn:startEvent id="s" /><bpmn:endEvent id="e">'
        + timer("timeDuration", "PT1S")
        + "</bpmn:endEvent>"
    )
    assert problems(end + flow("f", "s", "e")) == [
        (
            "e",
            "End events must be one of: none, error, message, terminate, signal, escalation or compensation",
        )
    ]
    throw = (
        '<bpmn:intermediateThrowEvent id="x"><bpmn:terminateEventDefinition /></bpmn:intermediateThrowEvent>'
    )
    assert problems(linear(throw, "x")) == [
        (
            "x",
            "Intermediate throw events must be one of: none, message, signal, escalation, link or compensation",
        )
    ]
    (problem,) = problems('<bpmn:startEvent id="s"><bpmn:errorEventDefinition /></bpmn:startEvent>')
    assert problem[0] == "s" and problem[1].startswith(
        "Start events of a process must be one of: none, timer"
    )


def test_non_interrupting_only_for_message_timer_signal_escalation() -> None:
    boundary = service_task("t") + (
        '<bpmn:boundaryEvent id="b" attachedToRef="t" cancelActivity="false">'
        '<bpmn:errorEventDefinition errorRef="err" /></bpmn:boundaryEvent>'
    )
    assert problems(linear(boundary, "t")) == [("b", "Non-Interrupting event of this type is not allowed")]


# --- signals, escalations, links ---------------------------------------------------------------------------


def test_signals() -> None:
    assert problems(linear(catch("x", "<bpmn:signalEventDefinition />"), "x")) == [
        ("x > signalEventDefinition", "Must reference a signal")
    ]
    assert problems(linear(catch("x", '<bpmn:signalEventDefinition signalRef="sig-nameless" />'), "x")) == [
        ("sig-nameless", "Name must be present and not empty")
    ]
    starts = (
        '<bpmn:startEvent id="s1"><bpmn:signalEventDefinition signalRef="sig" /></bpmn:startEvent>'
        '<bpmn:startEvent id="s2"><bpmn:signalEventDefinition signalRef="sig-2" /></bpmn:startEvent>'
    )
    assert problems(starts) == [
        ("p", "Multiple signal event definitions with the same name 'stop' are not allowed.")
    ]


def test_escalations() -> None:
    throw = (
        '<bpmn:intermediateThrowEvent id="x"><bpmn:escalationEventDefinition /></bpmn:intermediateThrowEvent>'
    )
    assert problems(linear(throw, "x")) == [("x > escalationEventDefinition", "Must reference an escalation")]
    codeless = throw.replace(
        "<bpmn:escalationEventDefinition />",
        '<bpmn:escalationEventDefinition escalationRef="esc-codeless" />',
    )
    assert problems(linear(codeless, "x")) == [
        ("esc-codeless", "EscalationCode must be present and not empty")
    ]
    feel_throw = throw.replace(
        "<bpmn:escalationEventDefinition />", '<bpmn:escalationEventDefinition escalationRef="esc-feel" />'
    )
    valid(linear(feel_throw, "x"))  # a thrown code may be FEEL
    sub = '<bpmn:subProcess id="t"><bpmn:startEvent id="in" /></bpmn:subProcess>'
    feel_catch = sub + (
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:escalationEventDefinition escalationRef="esc-feel" />'
        "</bpmn:boundaryEvent>"
    )
    assert problems(linear(feel_catch, "t")) == [
        (
            "b > escalationEventDefinition",
            "The escalationCode of the escalation catch event is not allowed to be an expression",
        )
    ]
    on_task = service_task("t") + (
        '<bpmn:boundaryEvent id="b" attachedToRef="t"><bpmn:escalationEventDefinition /></bpmn:boundaryEvent>'
    )
    assert problems(linear(on_task, "t")) == [
        ("b", "An escalation boundary event should only be attached to a subprocess, or a call activity.")
    ]
    two_catch_alls = sub + "".join(
        f'<bpmn:boundaryEvent id="b{i}" attachedToRef="t"><bpmn:escalationEventDefinition /></bpmn:boundaryEvent>'
        for i in (1, 2)
    )
    assert problems(linear(two_catch_alls, "t")) == [
        (
            "t",
            "The same scope can not contain more than one escalation catch event without escalation code. "
            "An escalation catch event without escalation code catches all escalations.",
        )
    ]


def link(kind: str, event_id: str, name: str | None) -> str:
    tag = "intermediateCatchEvent" if kind == "catch" else "intermediateThrowEvent"
    attribute = f' name="{name}"' if name is not None else ""
    return f'<bpmn:{tag} id="{event_id}"><bpmn:linkEventDefinition{attribute} /></bpmn:{tag}>'


def test_links() -> None:
    assert problems(linear(link("throw", "x", None), "x")) == [
        ("x > linkEventDefinition", "Link name must be present and not empty.")
    ]
    assert problems(linear(link("throw", "x", "A") + link("catch", "y", "B"), "x")) == [
        ("p", "Can't find an catch link event for the throw link event with the name 'A'.")
    ]
    twice = link("throw", "x", "A") + link("catch", "y", "A") + link("catch", "z", "A") + flow("yz", "y", "z")
    assert problems(linear(twice, "x")) == [
        ("p", "Multiple intermediate catch link event definitions with the same name 'A' are not allowed.")
    ]
    # a throw link cannot jump into another scope
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="in" />'
        + link("catch", "y", "A")
        + "</bpmn:subProcess>"
    )
    found = problems(around(link("throw", "x", "A") + sub, "sub", "sub"))
    assert ("p", "Can't find an catch link event for the throw link event with the name 'A'.") in found


# --- compensation -------------------------------------------------------------------------------------------


HANDLER = '<bpmn:serviceTask id="undo" isForCompensation="true">' + JOB + "</bpmn:serviceTask>"
COMPENSATION_BOUNDARY = (
    '<bpmn:boundaryEvent id="cb" attachedToRef="t"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>'
)
ASSOCIATION = '<bpmn:association id="a" sourceRef="cb" targetRef="undo" />'


def test_compensation_boundary_needs_an_association_and_no_flows() -> None:
    assert problems(linear(service_task("t") + COMPENSATION_BOUNDARY + HANDLER, "t")) == [
        (
            "cb",
            "Compensation boundary events must have a compensation association and no outgoing sequence flows",
        )
    ]
    valid(linear(service_task("t") + COMPENSATION_BOUNDARY + HANDLER + ASSOCIATION, "t"))


def test_compensation_handlers() -> None:
    with_flow = (
        service_task("t") + COMPENSATION_BOUNDARY + HANDLER + ASSOCIATION + flow("into", "start", "undo")
    )
    assert ("undo", "A compensation handler should have no incoming sequence flows") in problems(
        linear(with_flow, "t")
    )
    receive = '<bpmn:receiveTask id="undo" messageRef="msg" isForCompensation="true" />'
    found = problems(linear(service_task("t") + COMPENSATION_BOUNDARY + receive + ASSOCIATION, "t"))
    assert found == [
        (
            "undo",
            "Compensation task must be one of: service task, user task, send task, script task, manual task, "
            "or undefined task.",
        )
    ]


def test_compensation_throw_events() -> None:
    throw = (
        '<bpmn:intermediateThrowEvent id="x"><bpmn:compensateEventDefinition waitForCompletion="false" />'
        "</bpmn:intermediateThrowEvent>"
    )
    assert problems(linear(throw, "x")) == [
        (
            "x",
            "A compensation intermediate throwing event waitForCompletion attribute must be true or not present",
        )
    ]
    missing = throw.replace(' waitForCompletion="false"', ' activityRef="nothing"')
    assert problems(linear(missing, "x")) == [
        ("x", "The referenced compensation activity 'nothing' doesn't exist")
    ]
    plain = service_task("t") + missing.replace("nothing", "t") + flow("tx", "t", "x")
    assert problems(around(plain, "t", "x")) == [
        (
            "x",
            "The referenced compensation activity 't' must have either a compensation boundary event or be a subprocess",
        )
    ]
    end = (
        '<bpmn:startEvent id="s" /><bpmn:endEvent id="e"><bpmn:compensateEventDefinition waitForCompletion="false" />'
        "</bpmn:endEvent>" + flow("f", "s", "e")
    )
    assert problems(end) == [
        ("e", "A compensation end event waitForCompletion attribute must be true or not present")
    ]


# --- event subprocesses --------------------------------------------------------------------------------------


def event_sub(sub_id: str, start: str, interrupting: str = "true", extra_start: str = "") -> str:
    return (
        f'<bpmn:subProcess id="{sub_id}" triggeredByEvent="true">'
        f'<bpmn:startEvent id="{sub_id}-s" isInterrupting="{interrupting}">{start}</bpmn:startEvent>{extra_start}'
        "</bpmn:subProcess>"
    )


def test_event_subprocess_rules() -> None:
    base = '<bpmn:startEvent id="start" />'
    assert problems(base + event_sub("e", "")) == [
        (
            "e-s",
            "Start events in event subprocesses must be one of: message, timer, error, signal or escalation",
        )
    ]
    assert problems(base + event_sub("e", '<bpmn:errorEventDefinition errorRef="err" />', "false")) == [
        ("e-s", "Non-Interrupting event of this type is not allowed")
    ]
    assert problems(base + event_sub("e", timer("timeCycle", "R/PT1M"))) == [
        ("e-s", "Interrupting timer event with time cycle is not allowed.")
    ]
    two_starts = event_sub("e", timer("timeDuration", "PT1M"), extra_start='<bpmn:startEvent id="again" />')
    assert ("e", "Must have exactly one start event") in problems(base + two_starts)
    catch_alls = event_sub("e1", "<bpmn:errorEventDefinition />") + event_sub(
        "e2", "<bpmn:errorEventDefinition />"
    )
    assert problems(base + catch_alls) == [
        (
            "p",
            "The same scope can not contain more than one error catch event without error code. "
            "An error catch event without error code catches all errors.",
        )
    ]
    same_message = event_sub("e1", '<bpmn:messageEventDefinition messageRef="msg" />') + event_sub(
        "e2", '<bpmn:messageEventDefinition messageRef="msg-2" />'
    )
    assert problems(base + same_message) == [
        ("p", "Multiple message event definitions with the same name 'order-paid' are not allowed.")
    ]


# --- duplicate boundary catches -------------------------------------------------------------------------------


def test_duplicate_message_and_signal_boundaries() -> None:
    boundaries = service_task("t") + (
        '<bpmn:boundaryEvent id="b1" attachedToRef="t"><bpmn:messageEventDefinition messageRef="msg" />'
        "</bpmn:boundaryEvent>"
        '<bpmn:boundaryEvent id="b2" attachedToRef="t" cancelActivity="false">'
        '<bpmn:messageEventDefinition messageRef="msg-2" /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="b3" attachedToRef="t"><bpmn:signalEventDefinition signalRef="sig" />'
        "</bpmn:boundaryEvent>"
        '<bpmn:boundaryEvent id="b4" attachedToRef="t"><bpmn:signalEventDefinition signalRef="sig-2" />'
        "</bpmn:boundaryEvent>"
    )
    assert problems(linear(boundaries, "t")) == [
        ("t", "Multiple message event definitions with the same name 'order-paid' are not allowed."),
        ("t", "Multiple signal event definitions with the same name 'stop' are not allowed."),
    ]


# --- gateways -----------------------------------------------------------------------------------------------------


def test_inclusive_gateway_flows_need_conditions() -> None:
    body = (
        '<bpmn:startEvent id="s" /><bpmn:inclusiveGateway id="g" default="d" />'
        '<bpmn:endEvent id="a" /><bpmn:endEvent id="b" /><bpmn:endEvent id="c" />'
        + flow("f", "s", "g")
        + flow("to-a", "g", "a", "= x")
        + flow("to-b", "g", "b")
        + flow("d", "g", "c")
    )
    assert problems(body) == [("to-b", "Must have a condition")]
    static = body.replace(flow("to-b", "g", "b"), flow("to-b", "g", "b", "x &gt; 1"))
    assert problems(static) == [
        (
            "to-b > conditionExpression",
            "Expected expression but found static value 'x > 1'. An expression must start with '=' (e.g. '=x > 1').",
        )
    ]


def event_gateway(targets: str, flows: str) -> str:
    return (
        '<bpmn:startEvent id="s" /><bpmn:eventBasedGateway id="g" />' + targets + flow("f0", "s", "g") + flows
    )


def test_event_based_gateway_rules() -> None:
    paid = catch("paid", '<bpmn:messageEventDefinition messageRef="msg" />')
    late = catch("late", timer("timeDuration", "PT1H"))
    assert problems(event_gateway(paid, flow("f1", "g", "paid"))) == [
        ("g", "Event-based gateway must have at least 2 outgoing sequence flows.")
    ]
    to_task = event_gateway(paid + service_task("t"), flow("f1", "g", "paid") + flow("f2", "g", "t"))
    assert problems(to_task) == [
        (
            "g",
            "Event-based gateway must not have an outgoing sequence flow to other elements than "
            "message/timer/signal/conditional intermediate catch events.",
        )
    ]
    extra_incoming = event_gateway(
        paid + late, flow("f1", "g", "paid") + flow("f2", "g", "late") + flow("f3", "s", "late")
    )
    assert problems(extra_incoming) == [
        (
            "g",
            "Target elements of an event gateway must not have any additional incoming sequence flows other "
            "than that from the event gateway.",
        )
    ]
    paid_again = catch("again", '<bpmn:messageEventDefinition messageRef="msg-2" />')
    same_name = event_gateway(paid + paid_again, flow("f1", "g", "paid") + flow("f2", "g", "again"))
    assert problems(same_name) == [
        ("g", "Multiple message event definitions with the same name 'order-paid' are not allowed.")
    ]
    valid(event_gateway(paid + late, flow("f1", "g", "paid") + flow("f2", "g", "late")))


# --- tasks ----------------------------------------------------------------------------------------------------------


def test_script_tasks() -> None:
    assert problems(linear('<bpmn:scriptTask id="x" />', "x")) == [
        ("x", "Must have either one 'zeebe:script' or one 'zeebe:taskDefinition' extension element")
    ]
    both = (
        '<bpmn:scriptTask id="x"><bpmn:extensionElements><zeebe:script expression="=1" resultVariable="r" />'
        '<zeebe:taskDefinition type="t" /></bpmn:extensionElements></bpmn:scriptTask>'
    )
    assert problems(linear(both, "x")) == [
        ("x", "Must have either one 'zeebe:script' or one 'zeebe:taskDefinition' extension element")
    ]
    broken = (
        '<bpmn:scriptTask id="x"><bpmn:extensionElements><zeebe:script expression="1 + 1" />'
        "</bpmn:extensionElements></bpmn:scriptTask>"
    )
    assert problems(linear(broken, "x")) == [
        (
            "x > extensionElements > script",
            "Expected expression but found static value '1 + 1'. An expression must start with '=' (e.g. '=1 + 1').",
        ),
        ("x > extensionElements > script", "Attribute 'resultVariable' must be present and not empty"),
    ]


def test_business_rule_tasks() -> None:
    assert problems(linear('<bpmn:businessRuleTask id="x" />', "x")) == [
        ("x", "Must have either one 'zeebe:calledDecision' or one 'zeebe:taskDefinition' extension element")
    ]
    broken = (
        '<bpmn:businessRuleTask id="x"><bpmn:extensionElements><zeebe:calledDecision />'
        "</bpmn:extensionElements></bpmn:businessRuleTask>"
    )
    assert problems(linear(broken, "x")) == [
        ("x > extensionElements > calledDecision", "Attribute 'decisionId' must be present and not empty"),
        (
            "x > extensionElements > calledDecision",
            "Attribute 'resultVariable' must be present and not empty",
        ),
    ]


# --- multi-instance --------------------------------------------------------------------------------------------------


def multi(characteristics: str, extra: str = "") -> str:
    return linear(
        '<bpmn:task id="x"><bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements>'
        f"{characteristics}</bpmn:extensionElements>{extra}</bpmn:multiInstanceLoopCharacteristics></bpmn:task>",
        "x",
    )


def test_multi_instance_rules() -> None:
    path = "x > multiInstanceLoopCharacteristics > extensionElements > loopCharacteristics"
    assert problems(multi("")) == [
        (
            "x > multiInstanceLoopCharacteristics",
            "Must have exactly one 'zeebe:loopCharacteristics' extension element",
        )
    ]
    assert problems(multi("<zeebe:loopCharacteristics />")) == [
        (path, "Attribute 'inputCollection' must be present and not empty")
    ]
    assert problems(multi('<zeebe:loopCharacteristics inputCollection="items" />')) == [
        (
            path,
            "Expected expression but found static value 'items'. An expression must start with '=' (e.g. '=items').",
        )
    ]
    assert problems(
        multi('<zeebe:loopCharacteristics inputCollection="=items" outputCollection="out" />')
    ) == [(path, "Attribute 'outputElement' must be present if the attribute 'outputCollection' is set")]
    assert problems(multi('<zeebe:loopCharacteristics inputCollection="=items" outputElement="=x" />')) == [
        (path, "Attribute 'outputCollection' must be present if the attribute 'outputElement' is set")
    ]
    bad_condition = multi(
        '<zeebe:loopCharacteristics inputCollection="=items" />',
        "<bpmn:completionCondition>= a +</bpmn:completionCondition>",
    )
    ((identifier, message),) = problems(bad_condition)
    assert identifier == "x > multiInstanceLoopCharacteristics > completionCondition"
    assert message.startswith("failed to parse expression ' a +'") or message.startswith(
        "failed to parse expression"
    )
