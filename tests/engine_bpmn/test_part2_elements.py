"""Issue 14 elements become typed model fields (parsed with check_support=False: the whole
model), and the deployment gate (engine.bpmn.support) still refuses what the execution cannot
run, with the same message as before; removing a feature from the gate lets it deploy."""

from __future__ import annotations

import itertools

import pytest

from engine.bpmn import BpmnValidationError, ElementType, EventType, ProcessModel, parse_bpmn, support
from engine.bpmn.model import TimerKind
from tests.engine_bpmn import gate
from tests.engine_bpmn.snippets import around, document, flow, service_task

UNSUPPORTED = "not supported by the Fleetflow embedded engine"

DEFINITIONS = (
    '<bpmn:message id="msg-order" name="order-paid"><bpmn:extensionElements>'
    '<zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>'
    '<bpmn:message id="msg-start" name="start-order" />'
    '<bpmn:message id="msg-feel" name="=&quot;cancel-&quot; + kind"><bpmn:extensionElements>'
    '<zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>'
    '<bpmn:signal id="sig-stop" name="stop-all" />'
    '<bpmn:signal id="sig-feel" name="=&quot;stop-&quot; + rack" />'
    '<bpmn:escalation id="esc-late" escalationCode="late" />'
    '<bpmn:escalation id="esc-feel" escalationCode="=code" />'
    '<bpmn:error id="err-broken" errorCode="broken" />'
)


def full_model(body: str, **kwargs: str) -> ProcessModel:
    (model,) = parse_bpmn("part2.bpmn", document(body, extra=DEFINITIONS, **kwargs), check_support=False)
    return model


def gated(body: str) -> list[tuple[str | None, str]]:
    """The problems a deployment of `body` gets ([] when it deploys)."""
    try:
        parse_bpmn("part2.bpmn", document(body, extra=DEFINITIONS))
    except BpmnValidationError as error:
        return [(p.element_identifier, p.message) for p in error.problems]
    return []


def timer(kind: str, text: str) -> str:
    return f"<bpmn:timerEventDefinition><bpmn:{kind}>{text}</bpmn:{kind}></bpmn:timerEventDefinition>"


def catch(event_id: str, definition: str) -> str:
    return f'<bpmn:intermediateCatchEvent id="{event_id}">{definition}</bpmn:intermediateCatchEvent>'


def throw(event_id: str, definition: str = "", extension: str = "") -> str:
    return (
        f'<bpmn:intermediateThrowEvent id="{event_id}">{extension}{definition}</bpmn:intermediateThrowEvent>'
    )


JOB = '<bpmn:extensionElements><zeebe:taskDefinition type="notify" retries="5" /></bpmn:extensionElements>'


# --- start events ---------------------------------------------------------------------------------


def test_timer_message_and_signal_start_events() -> None:
    body = (
        f'<bpmn:startEvent id="by-timer">{timer("timeCycle", "R/PT1H")}</bpmn:startEvent>'
        '<bpmn:startEvent id="by-message"><bpmn:messageEventDefinition messageRef="msg-start" /></bpmn:startEvent>'
        '<bpmn:startEvent id="by-signal"><bpmn:signalEventDefinition signalRef="sig-stop" /></bpmn:startEvent>'
        '<bpmn:endEvent id="end" />'
        + flow("f1", "by-timer", "end")
        + flow("f2", "by-message", "end")
        + flow("f3", "by-signal", "end")
    )
    model = full_model(body)
    by_timer, by_message, by_signal = (model.element(i) for i in ("by-timer", "by-message", "by-signal"))
    assert model.none_start_event is None
    assert model.process.start_events == [by_timer, by_message, by_signal]
    assert by_timer.event_type is EventType.TIMER and by_timer.timer is not None
    assert (by_timer.timer.kind, by_timer.timer.expression.raw) == (TimerKind.CYCLE, "R/PT1H")
    assert by_message.event_type is EventType.MESSAGE and by_message.message is not None
    assert by_message.message.message_ref == "msg-start"
    assert by_message.message.name is not None and by_message.message.name.raw == "start-order"
    assert by_message.message.correlation_key is None  # not needed on a start event
    assert by_signal.signal is not None and by_signal.signal.name.raw == "stop-all"
    assert model.start_events_of(EventType.TIMER) == [by_timer]
    assert model.start_events_of(EventType.MESSAGE) == [by_message]
    assert model.start_events_of(EventType.NONE) == []
    assert gated(body) == gate.expected(
        [
            ("by-timer", "timer-start"),
            ("by-message", "message-start"),
            ("by-signal", "signal-start"),
        ]
    )


def test_start_event_timer_feel_is_evaluated_at_deploy() -> None:
    ok = f'<bpmn:startEvent id="s">{timer("timeDate", "=&quot;2026-12-02T10:00:00Z&quot;")}</bpmn:startEvent>'
    assert full_model(ok).element("s").timer is not None
    broken = f'<bpmn:startEvent id="s">{timer("timeDate", "=missing")}</bpmn:startEvent>'
    with pytest.raises(BpmnValidationError) as caught:
        full_model(broken)
    (problem,) = caught.value.problems
    assert problem.element_identifier == "s > timerEventDefinition > timeDate"
    assert problem.message.startswith("Invalid timer date expression (")


# --- intermediate events -----------------------------------------------------------------------------


def test_intermediate_catch_events() -> None:
    middle = (
        catch("wait", timer("timeDuration", "PT15S"))
        + catch("paid", '<bpmn:messageEventDefinition messageRef="msg-order" />')
        + catch("stopped", '<bpmn:signalEventDefinition signalRef="sig-feel" />')
        + catch("until", timer("timeDate", "=deadline"))
        + flow("m1", "wait", "paid")
        + flow("m2", "paid", "stopped")
        + flow("m3", "stopped", "until")
    )
    model = full_model(around(middle, "wait", "until"))
    wait, paid, stopped, until = (model.element(i) for i in ("wait", "paid", "stopped", "until"))
    assert wait.element_type is ElementType.INTERMEDIATE_CATCH_EVENT and wait.event_type is EventType.TIMER
    assert wait.timer is not None and (wait.timer.kind, wait.timer.expression.text) == (
        TimerKind.DURATION,
        "PT15S",
    )
    assert paid.message is not None and paid.message.correlation_key is not None
    assert paid.message.correlation_key.is_feel and paid.message.correlation_key.text == "orderId"
    assert stopped.signal is not None and stopped.signal.name.is_feel
    assert stopped.signal.name.evaluate({"rack": "r7"}) == "stop-r7"
    assert until.timer is not None and until.timer.expression.is_feel


def test_intermediate_throw_events() -> None:
    middle = (
        throw("none")
        + throw("send", '<bpmn:messageEventDefinition messageRef="msg-order" />', JOB)
        + throw("broadcast", '<bpmn:signalEventDefinition signalRef="sig-stop" />')
        + throw("escalate", '<bpmn:escalationEventDefinition escalationRef="esc-feel" />')
        + flow("m1", "none", "send")
        + flow("m2", "send", "broadcast")
        + flow("m3", "broadcast", "escalate")
    )
    model = full_model(around(middle, "none", "escalate"))
    none, send, broadcast, escalate = (model.element(i) for i in ("none", "send", "broadcast", "escalate"))
    assert (none.element_type, none.event_type) == (ElementType.INTERMEDIATE_THROW_EVENT, EventType.NONE)
    assert send.is_job_worker and send.job_type is not None and send.job_type.raw == "notify"
    assert send.job_retries is not None and send.job_retries.raw == "5"
    assert send.message is not None and send.message.message_ref == "msg-order"
    assert broadcast.signal is not None and broadcast.signal.name.raw == "stop-all"
    assert escalate.escalation is not None and escalate.escalation.code is not None
    assert escalate.escalation.code.is_feel and escalate.escalation.escalation_ref == "esc-feel"
    assert not none.is_job_worker and not broadcast.is_job_worker
    assert gated(around(middle, "none", "escalate")) == gate.expected(
        [
            ("none", "none-intermediate-throw"),
            ("send", "message-intermediate-throw"),
            ("broadcast", "signal-intermediate-throw"),
            ("escalate", "escalation-intermediate-throw"),
        ]
    )


def test_link_events_pair_by_name_within_the_scope() -> None:
    body = (
        '<bpmn:startEvent id="start" />'
        + throw("go-to-b", '<bpmn:linkEventDefinition name="B" />')
        + catch("land-b", '<bpmn:linkEventDefinition name="B" />')
        + '<bpmn:endEvent id="end" />'
        + flow("f1", "start", "go-to-b")
        + flow("f2", "land-b", "end")
    )
    model = full_model(body)
    assert model.element("go-to-b").link_name == "B"
    assert model.process.link_catch_events == {"B": model.element("land-b")}
    assert model.element("land-b").event_type is EventType.LINK


# --- boundary events -------------------------------------------------------------------------------


def with_boundaries(boundaries: str, task: str = "", extra: str = "") -> str:
    return around((task or service_task("t")) + boundaries + extra, "t", "t")


def test_boundary_events_of_each_kind() -> None:
    boundaries = (
        f'<bpmn:boundaryEvent id="late" attachedToRef="t" cancelActivity="false">{timer("timeCycle", "R3/PT1M")}'
        "</bpmn:boundaryEvent>"
        '<bpmn:boundaryEvent id="cancelled" attachedToRef="t">'
        '<bpmn:messageEventDefinition messageRef="msg-order" /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="stop" attachedToRef="t" cancelActivity="false">'
        '<bpmn:signalEventDefinition signalRef="sig-stop" /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="failed" attachedToRef="t"><bpmn:errorEventDefinition errorRef="err-broken" />'
        "</bpmn:boundaryEvent>"
    )
    model = full_model(with_boundaries(boundaries))
    task = model.element("t")
    late, cancelled, stop, failed = (model.element(i) for i in ("late", "cancelled", "stop", "failed"))
    assert task.boundary_events == [late, cancelled, stop, failed]
    assert late.timer is not None and late.timer.kind is TimerKind.CYCLE and late.cancel_activity is False
    assert cancelled.message is not None and cancelled.cancel_activity is True
    assert stop.signal is not None and stop.cancel_activity is False
    assert failed.error_code == "broken"
    assert gated(with_boundaries(boundaries)) == gate.expected(
        [
            ("late", "timer-boundary"),
            ("cancelled", "message-boundary"),
            ("stop", "signal-boundary"),
        ]
    )


def test_escalation_boundary_on_a_subprocess() -> None:
    sub = (
        '<bpmn:subProcess id="t"><bpmn:startEvent id="inner-start" />'
        '<bpmn:endEvent id="inner-end"><bpmn:escalationEventDefinition escalationRef="esc-late" /></bpmn:endEvent>'
        + flow("inner", "inner-start", "inner-end")
        + "</bpmn:subProcess>"
    )
    boundary = (
        '<bpmn:boundaryEvent id="on-late" attachedToRef="t" cancelActivity="false">'
        '<bpmn:escalationEventDefinition escalationRef="esc-late" /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="any" attachedToRef="t"><bpmn:escalationEventDefinition /></bpmn:boundaryEvent>'
    )
    model = full_model(with_boundaries(boundary, task=sub))
    on_late, any_escalation = model.element("on-late"), model.element("any")
    assert on_late.escalation is not None and on_late.escalation.code is not None
    assert on_late.escalation.code.raw == "late" and not on_late.cancel_activity
    assert any_escalation.escalation is not None and any_escalation.escalation.code is None  # catch-all
    end = model.element("inner-end")
    assert (
        end.escalation is not None and end.escalation.code is not None and end.escalation.code.raw == "late"
    )


def test_compensation_boundary_handler_and_throw() -> None:
    handler = (
        '<bpmn:serviceTask id="undo" isForCompensation="true"><bpmn:extensionElements>'
        '<zeebe:taskDefinition type="undo" /></bpmn:extensionElements></bpmn:serviceTask>'
    )
    boundary = (
        '<bpmn:boundaryEvent id="on-undo" attachedToRef="t"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>'
        '<bpmn:association id="a1" associationDirection="One" sourceRef="on-undo" targetRef="undo" />'
    )
    middle = (
        service_task("t")
        + boundary
        + handler
        + throw("compensate", '<bpmn:compensateEventDefinition activityRef="t" />')
        + flow("m", "t", "compensate")
    )
    model = full_model(around(middle, "t", "compensate"))
    on_undo, undo, compensate = model.element("on-undo"), model.element("undo"), model.element("compensate")
    assert on_undo.event_type is EventType.COMPENSATION and on_undo.compensation_handler is undo
    assert undo.is_for_compensation and not undo.incoming
    assert compensate.compensation is not None and compensate.compensation.activity is model.element("t")
    assert compensate.compensation.wait_for_completion is True
    assert gated(around(middle, "t", "compensate")) == gate.expected(
        [
            ("on-undo", "compensation-boundary"),
            ("undo", "compensation-handler"),
            ("compensate", "compensation-intermediate-throw"),
        ]
    )


# --- end events ------------------------------------------------------------------------------------


def test_end_events_of_each_kind() -> None:
    body = (
        '<bpmn:startEvent id="start" /><bpmn:parallelGateway id="fork" />'
        f'<bpmn:endEvent id="e-message">{JOB}<bpmn:messageEventDefinition messageRef="msg-order" /></bpmn:endEvent>'
        '<bpmn:endEvent id="e-signal"><bpmn:signalEventDefinition signalRef="sig-stop" /></bpmn:endEvent>'
        '<bpmn:endEvent id="e-escalation"><bpmn:escalationEventDefinition escalationRef="esc-late" /></bpmn:endEvent>'
        '<bpmn:endEvent id="e-compensation"><bpmn:compensateEventDefinition /></bpmn:endEvent>'
        '<bpmn:endEvent id="e-terminate"><bpmn:terminateEventDefinition /></bpmn:endEvent>'
        + flow("f0", "start", "fork")
        + "".join(
            flow(f"f{i}", "fork", target)
            for i, target in enumerate(
                ["e-message", "e-signal", "e-escalation", "e-compensation", "e-terminate"], 1
            )
        )
    )
    model = full_model(body)
    message_end = model.element("e-message")
    assert (
        message_end.is_job_worker
        and message_end.job_type is not None
        and message_end.job_type.raw == "notify"
    )
    assert model.element("e-signal").signal is not None
    assert model.element("e-escalation").escalation is not None
    compensation = model.element("e-compensation").compensation
    assert compensation is not None and compensation.activity is None  # compensate the whole scope
    assert model.element("e-terminate").event_type is EventType.TERMINATE
    assert gated(body) == gate.expected(
        [
            ("e-message", "message-end"),
            ("e-signal", "signal-end"),
            ("e-escalation", "escalation-end"),
            ("e-compensation", "compensation-end"),
        ]
    )


# --- event subprocesses -------------------------------------------------------------------------------


def event_sub_process(sub_id: str, start: str, interrupting: str = "true") -> str:
    return (
        f'<bpmn:subProcess id="{sub_id}" triggeredByEvent="true">'
        f'<bpmn:startEvent id="{sub_id}-start" isInterrupting="{interrupting}">{start}</bpmn:startEvent>'
        f'<bpmn:endEvent id="{sub_id}-end" />'
        + flow(f"{sub_id}-flow", f"{sub_id}-start", f"{sub_id}-end")
        + "</bpmn:subProcess>"
    )


def test_event_subprocesses() -> None:
    subs = (
        event_sub_process("on-error", '<bpmn:errorEventDefinition errorRef="err-broken" />')
        + event_sub_process("on-timer", timer("timeCycle", "R/PT10M"), interrupting="false")
        + event_sub_process("on-message", '<bpmn:messageEventDefinition messageRef="msg-order" />', "false")
        + event_sub_process("on-signal", '<bpmn:signalEventDefinition signalRef="sig-stop" />')
        + event_sub_process("on-escalation", "<bpmn:escalationEventDefinition />", "false")
    )
    body = around(service_task("t") + subs, "t", "t")
    model = full_model(body)
    process = model.process
    ids = ["on-error", "on-timer", "on-message", "on-signal", "on-escalation"]
    assert [e.id for e in process.event_sub_processes] == ids
    for sub_id in ids:
        sub = model.element(sub_id)
        assert sub.element_type is ElementType.EVENT_SUB_PROCESS and sub.is_event_sub_process and sub.is_scope
        assert sub in process.children and sub.flow_scope is process
        (start,) = sub.start_events
        assert start.flow_scope is sub and sub.none_start_event is None
    assert model.element("on-error-start").error_code == "broken"
    assert model.element("on-error-start").interrupting is True
    assert model.element("on-timer-start").interrupting is False
    timer_definition = model.element("on-timer-start").timer
    assert timer_definition is not None and timer_definition.kind is TimerKind.CYCLE
    assert model.element("on-message-start").message is not None
    message = model.element("on-message-start").message
    assert message is not None and message.correlation_key is not None  # required in event subprocesses
    assert model.process.none_start_event is model.element("start")
    kinds = ["error", "timer", "message", "signal", "escalation"]
    assert gated(body) == gate.expected(
        [(sub_id, f"{kind}-event-sub-process") for sub_id, kind in zip(ids, kinds, strict=True)]
    )


# --- gateways --------------------------------------------------------------------------------------


def test_inclusive_gateway_with_conditions_and_default() -> None:
    body = (
        '<bpmn:startEvent id="start" /><bpmn:inclusiveGateway id="fork" default="other" />'
        '<bpmn:endEvent id="a" /><bpmn:endEvent id="b" /><bpmn:endEvent id="c" />'
        + flow("f0", "start", "fork")
        + flow("to-a", "fork", "a", "= amount &gt; 10")
        + flow("to-b", "fork", "b", "= urgent")
        + flow("other", "fork", "c")
    )
    model = full_model(body)
    fork = model.element("fork")
    assert fork.element_type is ElementType.INCLUSIVE_GATEWAY
    assert fork.default_flow is model.flow("other")
    assert [f.condition is not None for f in fork.outgoing] == [True, True, False]
    assert gated(body) == gate.expected([("fork", "inclusive-gateway")])


def test_event_based_gateway() -> None:
    body = (
        '<bpmn:startEvent id="start" /><bpmn:eventBasedGateway id="race" />'
        + catch("paid", '<bpmn:messageEventDefinition messageRef="msg-order" />')
        + catch("timeout", timer("timeDuration", "PT1H"))
        + '<bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />'
        + flow("f0", "start", "race")
        + flow("f1", "race", "paid")
        + flow("f2", "race", "timeout")
        + flow("f3", "paid", "e1")
        + flow("f4", "timeout", "e2")
    )
    model = full_model(body)
    race = model.element("race")
    assert race.element_type is ElementType.EVENT_BASED_GATEWAY
    assert [f.target.id for f in race.outgoing] == ["paid", "timeout"]
    assert gated(body) == gate.expected(
        [
            ("race", "event-based-gateway"),
            ("paid", "message-intermediate-catch"),
            ("timeout", "timer-intermediate-catch"),
        ]
    )


# --- tasks -----------------------------------------------------------------------------------------------


def test_receive_send_script_and_business_rule_tasks() -> None:
    tasks = (
        '<bpmn:receiveTask id="receive" messageRef="msg-order" />'
        f'<bpmn:sendTask id="send">{JOB}</bpmn:sendTask>'
        '<bpmn:scriptTask id="script-feel"><bpmn:extensionElements>'
        '<zeebe:script expression="=a + b" resultVariable="sum" /></bpmn:extensionElements></bpmn:scriptTask>'
        f'<bpmn:scriptTask id="script-job">{JOB}</bpmn:scriptTask>'
        '<bpmn:businessRuleTask id="rules"><bpmn:extensionElements>'
        '<zeebe:calledDecision decisionId="=decision" resultVariable="verdict" /></bpmn:extensionElements>'
        "</bpmn:businessRuleTask>"
        f'<bpmn:businessRuleTask id="rules-job">{JOB}</bpmn:businessRuleTask>'
        '<bpmn:manualTask id="manual" /><bpmn:task id="undefined" />'
    )
    ids = ["receive", "send", "script-feel", "script-job", "rules", "rules-job", "manual", "undefined"]
    chain = "".join(flow(f"c{i}", a, b) for i, (a, b) in enumerate(itertools.pairwise(ids)))
    body = around(tasks + chain, ids[0], ids[-1])
    model = full_model(body)
    receive = model.element("receive")
    assert receive.element_type is ElementType.RECEIVE_TASK and receive.message is not None
    assert receive.message.correlation_key is not None and receive.message.correlation_key.text == "orderId"
    send = model.element("send")
    assert send.element_type is ElementType.SEND_TASK and send.is_job_worker
    script = model.element("script-feel")
    assert script.script_expression is not None and script.script_expression.evaluate({"a": 1, "b": 2}) == 3
    assert script.result_variable == "sum" and not script.is_job_worker
    assert model.element("script-job").is_job_worker
    rules = model.element("rules")
    assert rules.called_decision_id is not None and rules.called_decision_id.is_feel
    assert rules.result_variable == "verdict" and not rules.is_job_worker
    assert model.element("rules-job").is_job_worker
    assert model.element("manual").element_type is ElementType.MANUAL_TASK
    assert model.element("undefined").element_type is ElementType.TASK
    assert gated(body) == gate.expected(
        [
            ("receive", "receive-task"),
            ("send", "send-task"),
            ("script-feel", "feel-script-task"),
            ("script-job", "job-script-task"),
            ("rules", "decision-business-rule-task"),
            ("rules-job", "job-business-rule-task"),
        ]
    )


def test_zeebe_user_task_and_linked_form_are_modelled_and_gated() -> None:
    task = (
        '<bpmn:userTask id="approve"><bpmn:extensionElements><zeebe:userTask />'
        '<zeebe:formDefinition formId="approval-form" /></bpmn:extensionElements></bpmn:userTask>'
    )
    body = around(task, "approve", "approve")
    approve = full_model(body).element("approve")
    assert approve.zeebe_user_task and approve.job_type is None and not approve.is_job_worker
    assert approve.form_id == "approval-form"
    assert gated(body) == gate.expected(
        [
            ("approve > extensionElements > userTask", "zeebe-user-task"),
            ("approve > extensionElements > formDefinition", "linked-form"),
        ]
    )
    if gate.is_gated("zeebe-user-task"):
        assert gate.message("zeebe-user-task") == (
            f"Zeebe user tasks (zeebe:userTask) are {UNSUPPORTED}; remove zeebe:userTask to run it as a "
            "job-based user task (job type 'io.camunda.zeebe:userTask')"
        )


# --- multi-instance ------------------------------------------------------------------------------------


def test_multi_instance() -> None:
    task = service_task(
        "each",
        extra="",
    ).replace(
        "</bpmn:serviceTask>",
        '<bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:extensionElements>'
        '<zeebe:loopCharacteristics inputCollection="=servers" inputElement="server" '
        'outputCollection="results" outputElement="=result" /></bpmn:extensionElements>'
        "<bpmn:completionCondition>= numberOfCompletedInstances &gt;= 3</bpmn:completionCondition>"
        "</bpmn:multiInstanceLoopCharacteristics></bpmn:serviceTask>",
    )
    parallel = (
        '<bpmn:subProcess id="sub"><bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements>'
        '<zeebe:loopCharacteristics inputCollection="=[1, 2, 3]" /></bpmn:extensionElements>'
        '</bpmn:multiInstanceLoopCharacteristics><bpmn:startEvent id="s2" /></bpmn:subProcess>'
    )
    body = around(task + parallel + flow("m", "each", "sub"), "each", "sub")
    model = full_model(body)
    each = model.element("each").multi_instance
    assert each is not None and each.is_sequential
    assert each.input_collection.text == "servers" and each.input_element == "server"
    assert each.output_collection == "results" and each.output_element is not None
    assert each.output_element.text == "result"
    assert each.completion_condition is not None
    assert each.completion_condition.evaluate({"numberOfCompletedInstances": 3}) is True
    sub = model.element("sub").multi_instance
    assert sub is not None and not sub.is_sequential and sub.input_element is None
    assert gated(body) == gate.expected(
        [
            ("each > multiInstanceLoopCharacteristics", "multi-instance"),
            ("sub > multiInstanceLoopCharacteristics", "multi-instance"),
        ]
    )


# --- the gate -----------------------------------------------------------------------------------------------


def test_every_gated_feature_has_a_message_and_is_reachable() -> None:
    """The gate's table names only features that features_of can report."""
    kinds = [
        "timer",
        "message",
        "signal",
        "error",
        "escalation",
        "link",
        "compensation",
        "conditional",
        "none",
    ]
    positions = ["start", "intermediate-catch", "intermediate-throw", "boundary", "end", "event-sub-process"]
    reachable = {f"{kind}-{position}" for kind in kinds for position in positions} | {
        "inclusive-gateway",
        "event-based-gateway",
        "receive-task",
        "send-task",
        "job-script-task",
        "feel-script-task",
        "job-business-rule-task",
        "decision-business-rule-task",
        "zeebe-user-task",
        "linked-form",
        "multi-instance",
        "compensation-handler",
    }
    assert set(support.NOT_YET_SUPPORTED) <= reachable
    for feature, words in support.NOT_YET_SUPPORTED.items():
        assert words.endswith(" are"), feature


ONE_FEATURE_BODIES = {
    "timer-intermediate-catch": around(catch("x", timer("timeDuration", "PT1S")), "x", "x"),
    "receive-task": around('<bpmn:receiveTask id="x" messageRef="msg-order" />', "x", "x"),
    "none-intermediate-throw": around(throw("x"), "x", "x"),
    "inclusive-gateway": around('<bpmn:inclusiveGateway id="x" />', "x", "x"),
}


@pytest.mark.parametrize("feature", sorted(ONE_FEATURE_BODIES))
def test_removing_a_feature_from_the_gate_lets_it_deploy(
    feature: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = ONE_FEATURE_BODIES[feature]
    monkeypatch.setitem(support.NOT_YET_SUPPORTED, feature, gate.WORDS[feature])
    assert gated(body) == [("x", gate.message(feature))]
    monkeypatch.delitem(support.NOT_YET_SUPPORTED, feature)
    (model,) = parse_bpmn("part2.bpmn", document(body, extra=DEFINITIONS))
    assert model.element("x").id == "x"


def test_the_gate_describes_supported_elements_too() -> None:
    body = (
        '<bpmn:startEvent id="start" />'
        '<bpmn:endEvent id="stop"><bpmn:terminateEventDefinition /></bpmn:endEvent>'
        + flow("f", "start", "stop")
    )
    model = full_model(body)
    assert support.features_of(model.element("stop")) == [("terminate-end", None)]
    assert support.features_of(model.element("start")) == [("none-start", None)]
    assert support.unsupported_problems(model.elements_by_id.values()) == []
