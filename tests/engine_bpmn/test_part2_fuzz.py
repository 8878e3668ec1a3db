"""Hostile and random input for the part-2 parser: random graphs of the new elements, mutated
real models and huge documents. Each is either a model that keeps the guarantees documented in
engine/bpmn/model.py or a BpmnValidationError whose problems name an element (or the resource);
nothing else may escape, with or without the deployment gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.bpmn import (
    BpmnValidationError,
    Element,
    ElementType,
    EventType,
    ProcessModel,
    parse_bpmn,
    zeebe_rejection_reason,
)
from engine.bpmn.model import ACTIVITY_TYPES
from tests.engine_bpmn import gate
from tests.engine_bpmn.snippets import document, flow

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bpmn"

DEFINITIONS = (
    '<bpmn:message id="m1" name="one"><bpmn:extensionElements><zeebe:subscription correlationKey="=k" />'
    '</bpmn:extensionElements></bpmn:message><bpmn:message id="m2" name="one" /><bpmn:message id="m3" />'
    '<bpmn:signal id="s1" name="go" /><bpmn:signal id="s2" />'
    '<bpmn:escalation id="e1" escalationCode="up" /><bpmn:error id="x1" errorCode="bad" />'
)
DEFINITION_CHOICES = [
    "",
    '<bpmn:messageEventDefinition messageRef="m1" />',
    '<bpmn:messageEventDefinition messageRef="m2" />',
    '<bpmn:messageEventDefinition messageRef="m3" />',
    "<bpmn:messageEventDefinition />",
    '<bpmn:signalEventDefinition signalRef="s1" />',
    '<bpmn:signalEventDefinition signalRef="s2" />',
    '<bpmn:escalationEventDefinition escalationRef="e1" />',
    "<bpmn:escalationEventDefinition />",
    '<bpmn:errorEventDefinition errorRef="x1" />',
    '<bpmn:linkEventDefinition name="L" />',
    "<bpmn:linkEventDefinition />",
    "<bpmn:compensateEventDefinition />",
    "<bpmn:terminateEventDefinition />",
    "<bpmn:conditionalEventDefinition />",
    "<bpmn:timerEventDefinition><bpmn:timeDuration>PT1S</bpmn:timeDuration></bpmn:timerEventDefinition>",
    "<bpmn:timerEventDefinition><bpmn:timeCycle>R/PT1S</bpmn:timeCycle></bpmn:timerEventDefinition>",
    "<bpmn:timerEventDefinition><bpmn:timeDate>=when</bpmn:timeDate></bpmn:timerEventDefinition>",
    "<bpmn:timerEventDefinition><bpmn:timeDuration>soon</bpmn:timeDuration></bpmn:timerEventDefinition>",
    "<bpmn:timerEventDefinition />",
]
JOB = '<bpmn:extensionElements><zeebe:taskDefinition type="t" /></bpmn:extensionElements>'
LOOP = (
    '<bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:extensionElements>'
    '<zeebe:loopCharacteristics inputCollection="=items" inputElement="item" /></bpmn:extensionElements>'
    "</bpmn:multiInstanceLoopCharacteristics>"
)
NODE_KINDS = [
    "start",
    "typed-start",
    "end",
    "typed-end",
    "catch",
    "throw",
    "task",
    "service",
    "receive",
    "send",
    "script",
    "rules",
    "inclusive",
    "event-gateway",
    "exclusive",
    "parallel",
    "sub",
    "event-sub",
    "multi",
    "handler",
]
CONDITIONS = [None, None, None, "=x &gt; 1", "=y", "x"]


def node_xml(kind: str, node_id: str, definition: str, default: str | None) -> str:
    default_attribute = f' default="{default}"' if default else ""
    inner_start = f'<bpmn:startEvent id="{node_id}-s">{definition}</bpmn:startEvent>'
    return {
        "start": f'<bpmn:startEvent id="{node_id}" />',
        "typed-start": f'<bpmn:startEvent id="{node_id}">{definition}</bpmn:startEvent>',
        "end": f'<bpmn:endEvent id="{node_id}" />',
        "typed-end": f'<bpmn:endEvent id="{node_id}">{JOB}{definition}</bpmn:endEvent>',
        "catch": f'<bpmn:intermediateCatchEvent id="{node_id}">{definition}</bpmn:intermediateCatchEvent>',
        "throw": f'<bpmn:intermediateThrowEvent id="{node_id}">{definition}</bpmn:intermediateThrowEvent>',
        "task": f'<bpmn:task id="{node_id}" />',
        "service": f'<bpmn:serviceTask id="{node_id}">{JOB}</bpmn:serviceTask>',
        "receive": f'<bpmn:receiveTask id="{node_id}" messageRef="m1" />',
        "send": f'<bpmn:sendTask id="{node_id}">{JOB}</bpmn:sendTask>',
        "script": f'<bpmn:scriptTask id="{node_id}"><bpmn:extensionElements><zeebe:script expression="=1" '
        'resultVariable="r" /></bpmn:extensionElements></bpmn:scriptTask>',
        "rules": f'<bpmn:businessRuleTask id="{node_id}"><bpmn:extensionElements><zeebe:calledDecision '
        'decisionId="d" resultVariable="r" /></bpmn:extensionElements></bpmn:businessRuleTask>',
        "inclusive": f'<bpmn:inclusiveGateway id="{node_id}"{default_attribute} />',
        "event-gateway": f'<bpmn:eventBasedGateway id="{node_id}" />',
        "exclusive": f'<bpmn:exclusiveGateway id="{node_id}"{default_attribute} />',
        "parallel": f'<bpmn:parallelGateway id="{node_id}" />',
        "sub": f'<bpmn:subProcess id="{node_id}"><bpmn:startEvent id="{node_id}-s" /></bpmn:subProcess>',
        "event-sub": f'<bpmn:subProcess id="{node_id}" triggeredByEvent="true">{inner_start}</bpmn:subProcess>',
        "multi": f'<bpmn:serviceTask id="{node_id}">{JOB}{LOOP}</bpmn:serviceTask>',
        "handler": f'<bpmn:serviceTask id="{node_id}" isForCompensation="true">{JOB}</bpmn:serviceTask>',
    }[kind]


@st.composite
def process_bodies(draw: st.DrawFn) -> str:
    kinds = ["start", *draw(st.lists(st.sampled_from(NODE_KINDS), max_size=8))]
    ids = [f"n{i}" for i in range(len(kinds))]
    referable = [*ids, *ids, "ghost", "n1-s"]
    flows = draw(
        st.lists(
            st.tuples(st.sampled_from(referable), st.sampled_from(referable), st.sampled_from(CONDITIONS)),
            max_size=10,
        )
    )
    flow_ids = [f"f{i}" for i in range(len(flows))]
    parts = []
    for kind, node_id in zip(kinds, ids, strict=True):
        definition = draw(st.sampled_from(DEFINITION_CHOICES))
        default = draw(st.sampled_from([None, *flow_ids])) if kind in ("exclusive", "inclusive") else None
        parts.append(node_xml(kind, node_id, definition, default))
    for flow_id, (source, target, condition) in zip(flow_ids, flows, strict=True):
        parts.append(flow(flow_id, source, target, condition))
    for index in range(draw(st.integers(0, 3))):
        attached = draw(st.sampled_from(referable))
        definition = draw(st.sampled_from(DEFINITION_CHOICES))
        interrupting = draw(st.sampled_from(["true", "false"]))
        parts.append(
            f'<bpmn:boundaryEvent id="b{index}" attachedToRef="{attached}" cancelActivity="{interrupting}">'
            f"{definition}</bpmn:boundaryEvent>"
        )
        if draw(st.booleans()):
            parts.append(
                f'<bpmn:association id="a{index}" sourceRef="b{index}" targetRef="{draw(st.sampled_from(referable))}" />'
            )
    return "".join(parts)


def check_scope(scope: Element, model: ProcessModel) -> None:
    """The guarantees of engine/bpmn/model.py's docstring."""
    if scope.element_type is ElementType.SUB_PROCESS:
        assert scope.none_start_event is not None
    if scope.element_type is ElementType.EVENT_SUB_PROCESS:
        (start,) = scope.start_events
        assert start.event_type in (
            EventType.TIMER,
            EventType.MESSAGE,
            EventType.ERROR,
            EventType.SIGNAL,
            EventType.ESCALATION,
        )
    for child in scope.children:
        assert child.flow_scope is scope and model.elements_by_id[child.id] is child
        for outgoing in child.outgoing:
            assert outgoing.source is child and outgoing in outgoing.target.incoming
            assert outgoing.flow_scope is scope and outgoing.target.flow_scope is scope
            if outgoing.condition is not None:
                assert child.element_type in (ElementType.EXCLUSIVE_GATEWAY, ElementType.INCLUSIVE_GATEWAY)
                assert outgoing.condition.is_feel
        gateway_with_choice = child.element_type in (
            ElementType.EXCLUSIVE_GATEWAY,
            ElementType.INCLUSIVE_GATEWAY,
        )
        if gateway_with_choice and len(child.outgoing) > 1:
            assert all(f.condition is not None or f is child.default_flow for f in child.outgoing)
        if child.element_type is ElementType.EVENT_BASED_GATEWAY:
            assert len(child.outgoing) >= 2
            for outgoing in child.outgoing:
                target = outgoing.target
                assert target.element_type is ElementType.INTERMEDIATE_CATCH_EVENT
                assert target.event_type in (
                    EventType.MESSAGE,
                    EventType.TIMER,
                    EventType.SIGNAL,
                    EventType.CONDITIONAL,
                )
                assert [f.source for f in target.incoming] == [child]
        if child.element_type is ElementType.BOUNDARY_EVENT:
            assert child.attached_to is not None and child.attached_to.element_type in ACTIVITY_TYPES
            assert not child.incoming
            if child.event_type is EventType.COMPENSATION:
                assert child.compensation_handler is not None and not child.outgoing
            if child.timer is not None and child.cancel_activity:
                assert child.timer.kind.value != "timeCycle"
        if child.element_type is ElementType.INTERMEDIATE_CATCH_EVENT and child.timer is not None:
            assert child.timer.kind.value in ("timeDuration", "timeDate")
        if child.element_type is ElementType.INTERMEDIATE_THROW_EVENT and child.link_name is not None:
            assert child.link_name in scope.link_catch_events
        if child.is_for_compensation:
            assert not child.incoming and not child.outgoing and not child.boundary_events
        if child.message is not None and child.element_type in (
            ElementType.INTERMEDIATE_CATCH_EVENT,
            ElementType.BOUNDARY_EVENT,
            ElementType.RECEIVE_TASK,
        ):
            assert child.message.correlation_key is not None and child.message.correlation_key.is_feel
        if child.is_scope:
            check_scope(child, model)


VALID_EXAMPLE = (
    node_xml("start", "n0", "", None)
    + node_xml("event-gateway", "n1", "", None)
    + node_xml("catch", "n2", DEFINITION_CHOICES[1], None)
    + node_xml("catch", "n3", DEFINITION_CHOICES[15], None)
    + node_xml("inclusive", "n4", "", "f5")
    + node_xml("end", "n5", "", None)
    + node_xml("multi", "n6", "", None)
    + node_xml("event-sub", "n7", DEFINITION_CHOICES[9], None)
    + flow("f0", "n0", "n1")
    + flow("f1", "n1", "n2")
    + flow("f2", "n1", "n3")
    + flow("f3", "n2", "n4")
    + flow("f4", "n4", "n6", "=x &gt; 1")
    + flow("f5", "n4", "n5")
    + flow("f6", "n3", "n5")
    + '<bpmn:boundaryEvent id="b0" attachedToRef="n6" cancelActivity="false">'
    + DEFINITION_CHOICES[16]
    + "</bpmn:boundaryEvent>"
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(process_bodies(), st.booleans())
@example(VALID_EXAMPLE, False)
def test_generated_part2_graph_is_valid_or_rejected_by_element(body: str, check_support: bool) -> None:
    try:
        (model,) = parse_bpmn(
            "generated.bpmn", document(body, extra=DEFINITIONS), check_support=check_support
        )
    except BpmnValidationError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.element_id, problem
        return
    check_scope(model.process, model)


def test_valid_example_is_a_model() -> None:
    (model,) = parse_bpmn("example.bpmn", document(VALID_EXAMPLE, extra=DEFINITIONS), check_support=False)
    check_scope(model.process, model)
    assert model.element("n6").multi_instance is not None


# --- mutated real models ---------------------------------------------------------------------------------------


def real_models() -> list[bytes]:
    if not DATA_DIR.is_dir():
        return []
    return [path.read_bytes() for path in sorted(DATA_DIR.glob("*.bpmn"))]


REAL_MODELS = real_models()


@pytest.mark.skipif(not REAL_MODELS, reason=f"shared reference data not present at {DATA_DIR}")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_models_never_crash(data: st.DataObject) -> None:
    content = data.draw(st.sampled_from(REAL_MODELS))
    operation = data.draw(st.sampled_from(["cut", "delete", "duplicate", "replace-attribute", "swap-tag"]))
    start = data.draw(st.integers(0, len(content)))
    end = data.draw(st.integers(start, min(len(content), start + 400)))
    if operation == "cut":
        mutated = content[:start]
    elif operation == "delete":
        mutated = content[:start] + content[end:]
    elif operation == "duplicate":
        mutated = content[:end] + content[start:end] + content[end:]
    elif operation == "replace-attribute":
        # Put a hostile value into the next attribute value: huge, FEEL garbage, or a reference
        # to nothing.
        quote = content.find(b'="', start)
        close = content.find(b'"', quote + 2) if quote >= 0 else -1
        value = data.draw(
            st.sampled_from([b"=" + b"(" * 5000, b"x" * 10_000, b"R99999999999/PT1S", b"ghost", b"", b"=1 +"])
        )
        mutated = content if close < 0 else content[: quote + 2] + value + content[close:]
    else:
        tags = [
            b"bpmn:task",
            b"bpmn:intermediateCatchEvent",
            b"bpmn:boundaryEvent",
            b"bpmn:subProcess",
            b"bpmn:endEvent",
        ]
        old, new = data.draw(st.sampled_from(tags)), data.draw(st.sampled_from(tags))
        mutated = content.replace(old, new)
    for check_support in (True, False):
        try:
            parse_bpmn("mutated.bpmn", mutated, check_support=check_support)
        except BpmnValidationError as error:
            assert error.problems and all(p.message for p in error.problems)


# --- huge documents ------------------------------------------------------------------------------------------------


def test_a_long_chain_of_part2_elements() -> None:
    count = 3000
    events = "".join(
        f'<bpmn:intermediateCatchEvent id="c{i}"><bpmn:timerEventDefinition><bpmn:timeDuration>PT{i}S'
        "</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        for i in range(count)
    )
    flows = "".join(flow(f"f{i}", f"c{i}", f"c{i + 1}") for i in range(count - 1))
    body = '<bpmn:startEvent id="s" />' + events + flows + flow("fs", "s", "c0")
    (model,) = parse_bpmn("long.bpmn", document(body), check_support=False)
    assert len(model.elements_by_id) == count + 2
    if not gate.is_gated("timer-intermediate-catch"):
        parse_bpmn("long.bpmn", document(body))
        return
    with pytest.raises(BpmnValidationError) as caught:
        parse_bpmn("long.bpmn", document(body))
    assert len(caught.value.problems) == count  # the gate names every one
    # what a client gets is bounded (gRPC status messages travel in a header)
    assert zeebe_rejection_reason([caught.value]).endswith(f"\n... and {count - 20} more problems")


def test_many_boundary_events_on_one_activity() -> None:
    boundaries = "".join(
        f'<bpmn:boundaryEvent id="b{i}" attachedToRef="t" cancelActivity="false"><bpmn:timerEventDefinition>'
        f"<bpmn:timeCycle>R{i + 1}/PT1S</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        for i in range(2000)
    )
    body = '<bpmn:startEvent id="s" /><bpmn:task id="t" />' + boundaries + flow("f", "s", "t")
    (model,) = parse_bpmn("many.bpmn", document(body), check_support=False)
    assert len(model.element("t").boundary_events) == 2000


def nested_event_subprocesses(depth: int) -> bytes:
    opening = "".join(
        f'<bpmn:subProcess id="e{i}" triggeredByEvent="true"><bpmn:startEvent id="e{i}-s">'
        "<bpmn:errorEventDefinition /></bpmn:startEvent>"
        for i in range(depth)
    )
    return document('<bpmn:startEvent id="s" />' + opening + "</bpmn:subProcess>" * depth)


def test_event_subprocesses_nested_deep_are_read() -> None:
    (model,) = parse_bpmn("deep.bpmn", nested_event_subprocesses(90), check_support=False)
    assert model.element("e89").flow_scope is model.element("e88")


def test_event_subprocesses_nested_past_the_depth_limit_are_refused_cleanly() -> None:
    with pytest.raises(BpmnValidationError) as caught:
        parse_bpmn("deep.bpmn", nested_event_subprocesses(120), check_support=False)
    (problem,) = caught.value.problems
    assert problem.element_id is None and "deeper than the limit of 100 levels" in problem.message


def test_huge_names_and_timer_texts_are_reported_not_computed() -> None:
    huge = "P" + "9" * 100_000 + "D"
    body = (
        '<bpmn:startEvent id="s" /><bpmn:intermediateCatchEvent id="c"><bpmn:timerEventDefinition>'
        f"<bpmn:timeDuration>{huge}</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        + flow("f", "s", "c")
    )
    with pytest.raises(BpmnValidationError) as caught:
        parse_bpmn("huge.bpmn", document(body), check_support=False)
    (problem,) = caught.value.problems
    assert problem.element_identifier == "c > timerEventDefinition > timeDuration"
    assert "longer than the limit of 256" in problem.message
    assert len(problem.message) < 300
