"""Each supported BPMN element becomes the model the runtime expects."""

from __future__ import annotations

import hashlib

from engine.bpmn import ElementType, EventType, parse_bpmn
from engine.bpmn.model import (
    USER_TASK_ASSIGNEE_HEADER,
    USER_TASK_CANDIDATE_GROUPS_HEADER,
    USER_TASK_CANDIDATE_USERS_HEADER,
    USER_TASK_DUE_DATE_HEADER,
    USER_TASK_FOLLOW_UP_DATE_HEADER,
    USER_TASK_FORM_KEY_HEADER,
)
from tests.engine_bpmn.snippets import (
    BPMN_NS,
    ZEEBE_NS,
    around,
    document,
    flow,
    parse_one,
    service_task,
)


def test_start_to_end() -> None:
    content = document(
        '<bpmn:startEvent id="start" name="Go" /><bpmn:endEvent id="end" />' + flow("f", "start", "end"),
        process_id="simple",
    )
    (model,) = parse_bpmn("simple.bpmn", content)
    assert model.bpmn_process_id == "simple"
    assert model.resource_name == "simple.bpmn"
    assert model.resource == content
    assert model.checksum == hashlib.md5(content, usedforsecurity=False).digest()
    start, end = model.element("start"), model.element("end")
    assert (start.element_type, start.event_type, start.name) == (
        ElementType.START_EVENT,
        EventType.NONE,
        "Go",
    )
    assert (end.element_type, end.event_type) == (ElementType.END_EVENT, EventType.NONE)
    assert model.none_start_event is start
    assert model.process.element_type is ElementType.PROCESS
    assert model.process.event_type is EventType.UNSPECIFIED
    assert model.process.flow_scope is None
    assert start.flow_scope is model.process and end.flow_scope is model.process
    assert model.process.children == [start, end]
    (only_flow,) = start.outgoing
    assert only_flow is model.flow("f") and end.incoming == [only_flow]
    assert (only_flow.source, only_flow.target, only_flow.flow_scope) == (start, end, model.process)
    assert only_flow.element_type is ElementType.SEQUENCE_FLOW
    assert model.contains("f") and model.contains("start") and not model.contains("nope")
    assert set(model.elements_by_id) == {"simple", "start", "end"}


def test_default_namespace_and_other_prefixes() -> None:
    content = f"""<?xml version="1.0"?>
<definitions xmlns="{BPMN_NS}" xmlns:z="{ZEEBE_NS}" id="d" targetNamespace="t">
  <process id="plain" isExecutable="true">
    <startEvent id="start" />
    <serviceTask id="task"><extensionElements><z:taskDefinition type="job" retries="5" /></extensionElements></serviceTask>
    <endEvent id="end" />
    <sequenceFlow id="f1" sourceRef="start" targetRef="task" />
    <sequenceFlow id="f2" sourceRef="task" targetRef="end" />
  </process>
</definitions>""".encode()
    (model,) = parse_bpmn("default-ns.bpmn", content)
    task = model.element("task")
    assert task.job_type is not None and task.job_type.raw == "job"
    assert task.job_retries is not None and task.job_retries.raw == "5"

    semantic = (
        content.replace(b'xmlns="', b'xmlns:semantic="')
        .replace(b"<", b"<semantic:")
        .replace(b"<semantic:/", b"</semantic:")
    )
    semantic = (
        semantic.replace(b"<semantic:?xml", b"<?xml")
        .replace(b"semantic:z:", b"z:")
        .replace(b"</semantic:z:", b"</z:")
    )
    (model2,) = parse_bpmn("semantic-prefix.bpmn", semantic)
    assert model2.element("task").job_type is not None


def test_several_executable_processes_and_non_executable_ones() -> None:
    body = '<bpmn:startEvent id="{p}-start" /><bpmn:endEvent id="{p}-end" />' + flow(
        "{p}-f", "{p}-start", "{p}-end"
    )
    content = f"""<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" id="d" targetNamespace="t">
  <bpmn:process id="one" isExecutable="true">{body.format(p="one")}</bpmn:process>
  <bpmn:process id="docs-only" isExecutable="false"><bpmn:scriptTask id="not-read" /></bpmn:process>
  <bpmn:process id="two" isExecutable="true">{body.format(p="two")}</bpmn:process>
</bpmn:definitions>""".encode()
    models = parse_bpmn("two.bpmn", content)
    assert [m.bpmn_process_id for m in models] == ["one", "two"]
    assert models[0].checksum == models[1].checksum
    assert "two-start" not in models[0].elements_by_id


def test_version_tag() -> None:
    content = document(
        '<bpmn:extensionElements><zeebe:versionTag value="v1.2" /></bpmn:extensionElements>'
        '<bpmn:startEvent id="start" />'
    )
    (model,) = parse_bpmn("tag.bpmn", content)
    assert model.version_tag == "v1.2"


def test_service_task_definition_headers_and_defaults() -> None:
    task = (
        '<bpmn:serviceTask id="task" name="Work"><bpmn:extensionElements>'
        '<zeebe:taskDefinition type="replace-part" />'
        '<zeebe:taskHeaders><zeebe:header key="b" value="2" /><zeebe:header key="a" value="1" />'
        '<zeebe:header key="incomplete" /></zeebe:taskHeaders>'
        "</bpmn:extensionElements></bpmn:serviceTask>"
    )
    model = parse_one(around(task, "task", "task"))
    element = model.element("task")
    assert element.element_type is ElementType.SERVICE_TASK and element.is_job_worker
    assert element.event_type is EventType.UNSPECIFIED
    assert element.job_type is not None and element.job_type.is_static
    assert element.job_type.evaluate({}) == "replace-part"
    assert element.job_retries is not None and element.job_retries.raw == "3"
    assert list(element.task_headers.items()) == [("b", "2"), ("a", "1")]
    assert element.job_custom_headers({}) == {"b": "2", "a": "1"}


def test_service_task_feel_type_and_retries() -> None:
    task = service_task("task", job_type="=&quot;check-&quot; + part").replace(
        "/>", ' retries="=retryCount + 1" />', 1
    )
    element = parse_one(around(task, "task", "task")).element("task")
    assert element.job_type is not None and element.job_type.is_feel
    assert element.job_type.evaluate({"part": "cpu"}) == "check-cpu"
    assert element.job_retries is not None and element.job_retries.evaluate({"retryCount": 2}) == 3


def test_job_based_user_task() -> None:
    task = (
        '<bpmn:userTask id="verify"><bpmn:extensionElements>'
        '<zeebe:assignmentDefinition assignee="lead" candidateGroups="techs, leads" candidateUsers="ann" />'
        '<zeebe:taskSchedule dueDate="2026-12-01T10:00:00+01:00" followUpDate="2026-11-30T10:00:00Z" />'
        '<zeebe:formDefinition formKey="camunda-forms:bpmn:verifyForm" />'
        '<zeebe:taskHeaders><zeebe:header key="rack" value="R12" /></zeebe:taskHeaders>'
        "</bpmn:extensionElements></bpmn:userTask>"
    )
    element = parse_one(around(task, "verify", "verify")).element("verify")
    assert element.element_type is ElementType.USER_TASK
    assert element.job_type is not None and element.job_type.raw == "io.camunda.zeebe:userTask"
    assert element.job_retries is not None and element.job_retries.raw == "1"
    assert element.task_headers == {
        "rack": "R12",
        USER_TASK_ASSIGNEE_HEADER: "lead",
        USER_TASK_CANDIDATE_GROUPS_HEADER: '["techs","leads"]',
        USER_TASK_CANDIDATE_USERS_HEADER: '["ann"]',
        USER_TASK_DUE_DATE_HEADER: "2026-12-01T10:00:00+01:00",
        USER_TASK_FOLLOW_UP_DATE_HEADER: "2026-11-30T10:00:00Z",
        USER_TASK_FORM_KEY_HEADER: "camunda-forms:bpmn:verifyForm",
    }
    assert element.user_task_header_expressions == {}


def test_user_task_feel_assignment_is_evaluated_per_job() -> None:
    task = (
        '<bpmn:userTask id="verify"><bpmn:extensionElements>'
        '<zeebe:assignmentDefinition assignee="=technician" candidateGroups="=groups" />'
        "</bpmn:extensionElements></bpmn:userTask>"
    )
    element = parse_one(around(task, "verify", "verify")).element("verify")
    assert set(element.user_task_header_expressions) == {
        USER_TASK_ASSIGNEE_HEADER,
        USER_TASK_CANDIDATE_GROUPS_HEADER,
    }
    headers = element.job_custom_headers({"technician": "bob", "groups": ["a", "b"]})
    assert headers == {USER_TASK_ASSIGNEE_HEADER: "bob", USER_TASK_CANDIDATE_GROUPS_HEADER: '["a","b"]'}
    # a null result leaves the header out, as Zeebe does for an unassigned task
    assert element.job_custom_headers({"technician": None, "groups": None}) == {}


def test_manual_and_plain_tasks_pass_through() -> None:
    body = '<bpmn:manualTask id="manual" /><bpmn:task id="plain" />' + flow("f-mid", "manual", "plain")
    model = parse_one(around(body, "manual", "plain"))
    assert model.element("manual").element_type is ElementType.MANUAL_TASK
    assert model.element("plain").element_type is ElementType.TASK
    assert model.element("plain").job_type is None


def test_exclusive_gateway_conditions_and_default_in_document_order() -> None:
    body = (
        '<bpmn:exclusiveGateway id="gw" default="f-default" />'
        '<bpmn:endEvent id="end-a" /><bpmn:endEvent id="end-b" /><bpmn:endEvent id="end-c" />'
        + flow("f-a", "gw", "end-a", "= amount &gt; 100")
        + flow("f-default", "gw", "end-c")
        + flow("f-b", "gw", "end-b", '=diagnosis.result = "ok"')
        + '<bpmn:startEvent id="start" />'
        + flow("f-in", "start", "gw")
    )
    model = parse_one(body)
    gateway = model.element("gw")
    assert gateway.element_type is ElementType.EXCLUSIVE_GATEWAY
    assert [f.id for f in gateway.outgoing] == ["f-a", "f-default", "f-b"]
    assert gateway.default_flow is model.flow("f-default")
    condition_a = model.flow("f-a").condition
    assert condition_a is not None and condition_a.text == " amount > 100"
    assert condition_a.evaluate({"amount": 150}) is True
    condition_b = model.flow("f-b").condition
    assert condition_b is not None and condition_b.evaluate({"diagnosis": {"result": "ok"}}) is True
    assert model.flow("f-default").condition is None


def test_parallel_fork_and_join() -> None:
    body = (
        '<bpmn:parallelGateway id="fork" /><bpmn:parallelGateway id="join" />'
        + service_task("a")
        + service_task("b")
        + flow("f1", "fork", "a")
        + flow("f2", "fork", "b")
        + flow("f3", "a", "join")
        + flow("f4", "b", "join")
    )
    model = parse_one(around(body, "fork", "join"))
    assert model.element("fork").element_type is ElementType.PARALLEL_GATEWAY
    assert [f.id for f in model.element("fork").outgoing] == ["f1", "f2"]
    assert [f.id for f in model.element("join").incoming] == ["f3", "f4"]


def test_embedded_subprocess_is_a_scope() -> None:
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:extensionElements><zeebe:ioMapping>'
        '<zeebe:input source="static" target="mode" /></zeebe:ioMapping></bpmn:extensionElements>'
        '<bpmn:startEvent id="sub-start" />'
        + service_task("inner")
        + '<bpmn:endEvent id="sub-end" />'
        + flow("s1", "sub-start", "inner")
        + flow("s2", "inner", "sub-end")
        + "</bpmn:subProcess>"
    )
    model = parse_one(around(sub, "sub", "sub"))
    sub_element, inner = model.element("sub"), model.element("inner")
    assert sub_element.element_type is ElementType.SUB_PROCESS and sub_element.is_scope
    assert sub_element.flow_scope is model.process
    assert inner.flow_scope is sub_element
    assert sub_element.none_start_event is model.element("sub-start")
    assert [c.id for c in sub_element.children] == ["sub-start", "inner", "sub-end"]
    assert model.flow("s1").flow_scope is sub_element
    assert [(m.source.raw, m.target) for m in sub_element.inputs] == [("static", "mode")]


def test_call_activity() -> None:
    call = (
        '<bpmn:callActivity id="call"><bpmn:extensionElements>'
        '<zeebe:calledElement processId="server-repair" propagateAllChildVariables="false" '
        'propagateAllParentVariables="false" bindingType="latest" />'
        "</bpmn:extensionElements></bpmn:callActivity>"
        '<bpmn:callActivity id="call-defaults"><bpmn:extensionElements>'
        '<zeebe:calledElement processId="=childProcessId" /></bpmn:extensionElements></bpmn:callActivity>'
        + flow("f-mid", "call", "call-defaults")
    )
    model = parse_one(around(call, "call", "call-defaults"))
    call_element = model.element("call")
    assert call_element.element_type is ElementType.CALL_ACTIVITY
    assert (
        call_element.called_process_id is not None and call_element.called_process_id.raw == "server-repair"
    )
    assert call_element.propagate_all_child_variables is False
    assert call_element.propagate_all_parent_variables is False
    defaults = model.element("call-defaults")
    assert defaults.called_process_id is not None and defaults.called_process_id.is_feel
    assert defaults.called_process_id.text == "childProcessId"
    assert defaults.propagate_all_child_variables is True
    assert defaults.propagate_all_parent_variables is True


def test_error_boundary_events() -> None:
    errors = (
        '<bpmn:error id="err-no-stock" errorCode="NO_STOCK" />'
        '<bpmn:error id="err-broken" name="Broken" errorCode="BROKEN" />'
    )
    body = (
        service_task("task") + '<bpmn:boundaryEvent id="no-stock" attachedToRef="task">'
        '<bpmn:errorEventDefinition errorRef="err-no-stock" /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="any-error" attachedToRef="task"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
        '<bpmn:endEvent id="end-no-stock" /><bpmn:endEvent id="end-any" />'
        + flow("b1", "no-stock", "end-no-stock")
        + flow("b2", "any-error", "end-any")
    )
    model = parse_one(around(body, "task", "task"), extra=errors)
    task, no_stock, any_error = model.element("task"), model.element("no-stock"), model.element("any-error")
    assert task.boundary_events == [no_stock, any_error]
    assert no_stock.attached_to is task and no_stock.flow_scope is model.process
    assert (no_stock.element_type, no_stock.event_type) == (ElementType.BOUNDARY_EVENT, EventType.ERROR)
    assert (no_stock.error_code, no_stock.error_ref, no_stock.cancel_activity) == (
        "NO_STOCK",
        "err-no-stock",
        True,
    )
    assert (any_error.error_code, any_error.error_ref) == (None, None)
    assert no_stock.incoming == [] and [f.id for f in no_stock.outgoing] == ["b1"]


def test_boundary_event_on_subprocess_and_call_activity() -> None:
    body = (
        '<bpmn:subProcess id="sub"><bpmn:startEvent id="s" /></bpmn:subProcess>'
        '<bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="x" />'
        "</bpmn:extensionElements></bpmn:callActivity>"
        '<bpmn:boundaryEvent id="b-sub" attachedToRef="sub"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
        '<bpmn:boundaryEvent id="b-call" attachedToRef="call"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
        + flow("f-mid", "sub", "call")
    )
    model = parse_one(around(body, "sub", "call"))
    assert model.element("b-sub").attached_to is model.element("sub")
    assert model.element("b-call").attached_to is model.element("call")


def test_terminate_and_error_end_events() -> None:
    body = (
        '<bpmn:parallelGateway id="fork" />'
        '<bpmn:endEvent id="terminate"><bpmn:terminateEventDefinition /></bpmn:endEvent>'
        '<bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="err" /></bpmn:endEvent>'
        + flow("f1", "fork", "terminate")
        + flow("f2", "fork", "fail")
        + '<bpmn:startEvent id="start" />'
        + flow("f0", "start", "fork")
    )
    model = parse_one(body, extra='<bpmn:error id="err" errorCode="DIAGNOSIS_FAILED" />')
    terminate, fail = model.element("terminate"), model.element("fail")
    assert (terminate.element_type, terminate.event_type) == (ElementType.END_EVENT, EventType.TERMINATE)
    assert (fail.event_type, fail.error_code, fail.error_ref) == (EventType.ERROR, "DIAGNOSIS_FAILED", "err")
    assert (
        fail.error_code_expression is not None
        and fail.error_code_expression.evaluate({}) == "DIAGNOSIS_FAILED"
    )


def test_error_end_event_with_feel_error_code() -> None:
    body = (
        '<bpmn:startEvent id="start" /><bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="err" />'
        "</bpmn:endEvent>" + flow("f", "start", "fail")
    )
    model = parse_one(body, extra='<bpmn:error id="err" errorCode="=code" />')
    fail = model.element("fail")
    assert fail.error_code is None
    assert (
        fail.error_code_expression is not None and fail.error_code_expression.evaluate({"code": "X"}) == "X"
    )


def test_io_mappings_in_document_order() -> None:
    task = service_task(
        "task",
        extra='<zeebe:ioMapping><zeebe:input source="=serverSn" target="sn" />'
        '<zeebe:input source="literal" target="mode.kind" />'
        '<zeebe:output source="=result" target="diagnosis.result" /></zeebe:ioMapping>',
    )
    element = parse_one(around(task, "task", "task")).element("task")
    assert [(m.source.raw, m.target) for m in element.inputs] == [
        ("=serverSn", "sn"),
        ("literal", "mode.kind"),
    ]
    assert [(m.source.raw, m.target) for m in element.outputs] == [("=result", "diagnosis.result")]
    assert element.inputs[1].source.evaluate({}) == "literal"


def test_output_mappings_on_events() -> None:
    body = (
        '<bpmn:startEvent id="start"><bpmn:extensionElements><zeebe:ioMapping>'
        '<zeebe:output source="=1" target="x" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:startEvent>'
        '<bpmn:endEvent id="end"><bpmn:extensionElements><zeebe:ioMapping>'
        '<zeebe:output source="=2" target="y" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:endEvent>'
        + flow("f", "start", "end")
    )
    model = parse_one(body)
    assert [m.target for m in model.element("start").outputs] == ["x"]
    assert [m.target for m in model.element("end").outputs] == ["y"]


def test_foreign_namespaces_documentation_and_di_are_ignored() -> None:
    body = (
        "<bpmn:documentation>doc</bpmn:documentation>"
        '<bpmn:laneSet id="lanes"><bpmn:lane id="lane" /></bpmn:laneSet>'
        '<custom:thing xmlns:custom="urn:custom" id="custom-1"><custom:child /></custom:thing>'
        '<bpmn:textAnnotation id="note"><bpmn:text>hi</bpmn:text></bpmn:textAnnotation>'
        "<!-- a comment --><?pi data?>"
        '<bpmn:startEvent id="start" xmlns:c7="http://camunda.org/schema/1.0/bpmn" c7:asyncBefore="true">'
        '<bpmn:extensionElements><c7:properties /><zeebe:properties><zeebe:property name="a" value="b" />'
        "</zeebe:properties></bpmn:extensionElements></bpmn:startEvent>"
        '<bpmn:endEvent id="end" /><bpmn:association id="assoc" sourceRef="note" targetRef="start" />'
        + flow("f", "start", "end")
    )
    content = document(body).replace(
        b"</bpmn:definitions>",
        b'<bpmndi:BPMNDiagram xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" id="dia">'
        b'<bpmndi:BPMNPlane id="plane" bpmnElement="does-not-exist" /></bpmndi:BPMNDiagram></bpmn:definitions>',
    )
    (model,) = parse_bpmn("foreign.bpmn", content)
    assert set(model.elements_by_id) == {"p", "start", "end"}


def test_incoming_outgoing_children_are_not_needed() -> None:
    """bpmn:incoming/outgoing children are redundant; flows come from sourceRef/targetRef."""
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>wrong-id</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:endEvent id="end" />' + flow("f", "start", "end")
    )
    model = parse_one(body)
    assert [f.id for f in model.element("start").outgoing] == ["f"]
