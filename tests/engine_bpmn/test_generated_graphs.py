"""Randomly assembled process graphs: each is either rejected with element-naming problems or
yields a model that keeps every guarantee documented in engine/bpmn/model.py."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.bpmn import BpmnValidationError, Element, ElementType, ProcessModel, parse_bpmn
from engine.bpmn.model import ACTIVITY_TYPES
from tests.engine_bpmn.snippets import document, flow

NODE_KINDS = ["start", "end", "terminate", "task", "service", "user", "exclusive", "parallel", "sub", "timer"]
CONDITIONS = [None, None, None, None, "=x &gt; 1", "=y", "x", "  "]


def node_xml(kind: str, node_id: str, default: str | None) -> str:
    default_attribute = f' default="{default}"' if default else ""
    return {
        "start": f'<bpmn:startEvent id="{node_id}" />',
        "end": f'<bpmn:endEvent id="{node_id}" />',
        "terminate": f'<bpmn:endEvent id="{node_id}"><bpmn:terminateEventDefinition /></bpmn:endEvent>',
        "task": f'<bpmn:task id="{node_id}" />',
        "service": f'<bpmn:serviceTask id="{node_id}"><bpmn:extensionElements>'
        f'<zeebe:taskDefinition type="t" /></bpmn:extensionElements></bpmn:serviceTask>',
        "user": f'<bpmn:userTask id="{node_id}" />',
        "exclusive": f'<bpmn:exclusiveGateway id="{node_id}"{default_attribute} />',
        "parallel": f'<bpmn:parallelGateway id="{node_id}" />',
        "sub": f'<bpmn:subProcess id="{node_id}"><bpmn:startEvent id="{node_id}-s" /><bpmn:endEvent '
        f'id="{node_id}-e" />{flow(f"{node_id}-f", f"{node_id}-s", f"{node_id}-e")}</bpmn:subProcess>',
        "timer": f'<bpmn:intermediateCatchEvent id="{node_id}"><bpmn:timerEventDefinition />'
        "</bpmn:intermediateCatchEvent>",
    }[kind]


@st.composite
def process_bodies(draw: st.DrawFn) -> str:
    # Mostly well-formed: one start event first, references mostly to existing nodes.
    kinds = ["start", *draw(st.lists(st.sampled_from(NODE_KINDS), max_size=7))]
    ids = [f"n{i}" for i in range(len(kinds))]
    referable = [*ids, *ids, *ids, "ghost", "n1-s"]
    flows = draw(
        st.lists(
            st.tuples(st.sampled_from(referable), st.sampled_from(referable), st.sampled_from(CONDITIONS)),
            max_size=10,
        )
    )
    flow_ids = [f"f{i}" for i in range(len(flows))]
    parts = []
    for kind, node_id in zip(kinds, ids, strict=True):
        default = draw(st.sampled_from([None, *flow_ids, "ghost"])) if kind == "exclusive" else None
        parts.append(node_xml(kind, node_id, default))
    for flow_id, (source, target, condition) in zip(flow_ids, flows, strict=True):
        parts.append(flow(flow_id, source, target, condition))
    for index in range(draw(st.integers(0, 2))):
        attached = draw(st.sampled_from(referable))
        parts.append(
            f'<bpmn:boundaryEvent id="b{index}" attachedToRef="{attached}"><bpmn:errorEventDefinition />'
            "</bpmn:boundaryEvent>"
        )
    return "".join(parts)


def check_scope(scope: Element, model: ProcessModel) -> None:
    assert scope.none_start_event is not None
    assert scope.none_start_event.flow_scope is scope
    for child in scope.children:
        assert child.flow_scope is scope
        assert model.elements_by_id[child.id] is child
        for outgoing in child.outgoing:
            assert outgoing.source is child and outgoing in outgoing.target.incoming
            assert outgoing.flow_scope is scope and outgoing.target.flow_scope is scope
            assert model.flows_by_id[outgoing.id] is outgoing
            if outgoing.condition is not None:
                assert child.element_type is ElementType.EXCLUSIVE_GATEWAY
                assert outgoing.condition.is_feel
        if child.element_type is ElementType.EXCLUSIVE_GATEWAY and len(child.outgoing) > 1:
            assert all(f.condition is not None or f is child.default_flow for f in child.outgoing)
        if child.default_flow is not None:
            assert child.default_flow in child.outgoing
        if child.element_type is ElementType.END_EVENT:
            assert not child.outgoing
        if child.element_type is ElementType.BOUNDARY_EVENT:
            assert child.attached_to is not None and child.attached_to.element_type in ACTIVITY_TYPES
            assert child.attached_to.flow_scope is scope and child in child.attached_to.boundary_events
            assert not child.incoming
        if child.is_scope:
            check_scope(child, model)


VALID_EXAMPLE = (
    node_xml("start", "n0", None)
    + node_xml("service", "n1", None)
    + node_xml("exclusive", "n2", "f3")
    + node_xml("sub", "n3", None)
    + node_xml("end", "n4", None)
    + flow("f0", "n0", "n1")
    + flow("f1", "n1", "n2")
    + flow("f2", "n2", "n3", "=x &gt; 1")
    + flow("f3", "n2", "n4")
    + '<bpmn:boundaryEvent id="b0" attachedToRef="n1"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>'
    + flow("f4", "b0", "n4")
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(process_bodies())
@example(VALID_EXAMPLE)  # always exercise the invariant checks at least once
def test_generated_graph_is_valid_or_rejected_by_element(body: str) -> None:
    try:
        (model,) = parse_bpmn("generated.bpmn", document(body))
    except BpmnValidationError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.element_id, problem  # every problem names an element
        return
    check_scope(model.process, model)
