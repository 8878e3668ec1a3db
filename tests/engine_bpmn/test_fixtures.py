"""The hardware-diagnosis fixture models (tests/fixtures/bpmn) parse into the documented shape.

Other test suites (engine runtime, routing, importer) run these models; this pins what they
contain so a change to a fixture is a deliberate one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn import ElementType, EventType, ProcessModel, parse_bpmn, resource_checksum
from engine.bpmn.model import USER_TASK_ASSIGNEE_HEADER, USER_TASK_CANDIDATE_GROUPS_HEADER

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn"


def load(name: str) -> ProcessModel:
    content = (FIXTURES / f"{name}.bpmn").read_bytes()
    (model,) = parse_bpmn(f"{name}.bpmn", content)
    assert model.bpmn_process_id == name
    assert model.checksum == resource_checksum(content)
    return model


def path_of(model: ProcessModel) -> list[str]:
    """Element ids along the first outgoing flow from the start event (bounded walk)."""
    assert model.none_start_event is not None
    element = model.none_start_event
    ids = [element.id]
    for _ in range(len(model.elements_by_id)):
        if not element.outgoing:
            break
        element = element.outgoing[0].target
        ids.append(element.id)
    return ids


def test_rack_sweep() -> None:
    model = load("rack-sweep")
    assert path_of(model) == ["start", "list-servers", "fork-servers", "repair-a", "join-servers", "end"]
    list_servers = model.element("list-servers")
    assert list_servers.job_type is not None and list_servers.job_type.raw == "list-servers"
    fork = model.element("fork-servers")
    assert fork.element_type is ElementType.PARALLEL_GATEWAY
    assert [f.target.id for f in fork.outgoing] == ["repair-a", "repair-b"]
    assert [f.source.id for f in model.element("join-servers").incoming] == ["repair-a", "repair-b"]
    for call_id, index, output in (("repair-a", 1, "diagnosisA"), ("repair-b", 2, "diagnosisB")):
        call = model.element(call_id)
        assert call.element_type is ElementType.CALL_ACTIVITY
        assert call.called_process_id is not None and call.called_process_id.raw == "server-repair"
        assert call.propagate_all_child_variables is False
        assert [(m.source.raw, m.target) for m in call.inputs] == [(f"=servers[{index}]", "serverSn")]
        assert [(m.source.raw, m.target) for m in call.outputs] == [("=diagnosis", output)]


def test_server_repair() -> None:
    model = load("server-repair")
    assert path_of(model) == ["start", "diagnose", "diagnosis-ok", "end-healthy"]
    diagnose = model.element("diagnose")
    assert diagnose.called_process_id is not None and diagnose.called_process_id.raw == "diagnosis"
    assert diagnose.propagate_all_child_variables is True

    gateway = model.element("diagnosis-ok")
    assert gateway.default_flow is model.flow("flow-needs-repair")
    assert gateway.default_flow.target.id == "replace-part"
    healthy = model.flow("flow-healthy")
    assert healthy.condition is not None and healthy.condition.raw == '=diagnosis.result = "ok"'

    replace_part = model.element("replace-part")
    assert replace_part.job_type is not None and replace_part.job_type.raw == "replace-part"
    assert replace_part.job_retries is not None and replace_part.job_retries.raw == "3"
    assert replace_part.task_headers == {"partCatalog": "standard", "priority": "high"}
    assert [f.target.id for f in replace_part.outgoing] == ["verify-repair"]

    verify = model.element("verify-repair")
    assert verify.element_type is ElementType.USER_TASK
    assert verify.job_type is not None and verify.job_type.raw == "io.camunda.zeebe:userTask"
    assert verify.task_headers == {
        USER_TASK_ASSIGNEE_HEADER: "repair-lead",
        USER_TASK_CANDIDATE_GROUPS_HEADER: '["hardware-technicians"]',
    }
    assert [f.target.id for f in verify.outgoing] == ["end-repaired"]

    (no_stock,) = replace_part.boundary_events
    assert no_stock.id == "no-stock"
    assert (no_stock.event_type, no_stock.error_code, no_stock.cancel_activity) == (
        EventType.ERROR,
        "NO_STOCK",
        True,
    )
    order_part = no_stock.outgoing[0].target
    assert order_part.id == "order-part" and order_part.element_type is ElementType.USER_TASK
    assert order_part.task_headers == {USER_TASK_CANDIDATE_GROUPS_HEADER: '["procurement"]'}
    assert [f.target.id for f in order_part.outgoing] == ["end-part-ordered"]


def test_diagnosis() -> None:
    model = load("diagnosis")
    assert path_of(model) == ["start", "fork-checks", "check-cpu", "join-checks", "summarize", "end"]
    for task_id, target in (("check-cpu", "cpuOk"), ("check-memory", "memoryOk")):
        task = model.element(task_id)
        assert task.job_type is not None and task.job_type.raw == task_id
        assert [(m.source.raw, m.target) for m in task.outputs] == [("=ok", target)]
    summarize = model.element("summarize")
    assert [m.target for m in summarize.inputs] == ["cpuOk", "memoryOk"]
    assert [m.target for m in summarize.outputs] == ["diagnosis"]


def test_fixture_expressions_evaluate() -> None:
    server_repair = load("server-repair")
    condition = server_repair.flow("flow-healthy").condition
    assert condition is not None
    assert condition.evaluate({"diagnosis": {"result": "ok"}}) is True
    assert condition.evaluate({"diagnosis": {"result": "faulty"}}) is False

    (output,) = load("diagnosis").element("summarize").outputs
    assert output.source.evaluate({"result": "faulty", "cpuOk": True, "memoryOk": False}) == {
        "result": "faulty",
        "cpuOk": True,
        "memoryOk": False,
    }
    (serial_input,) = load("rack-sweep").element("repair-b").inputs
    assert serial_input.source.evaluate({"servers": ["SN-1", "SN-2"]}) == "SN-2"


def test_call_chain_is_closed() -> None:
    models = {name: load(name) for name in ("rack-sweep", "server-repair", "diagnosis")}
    called = {
        element.called_process_id.raw
        for model in models.values()
        for element in model.elements_by_id.values()
        if element.called_process_id is not None
    }
    assert called == {"server-repair", "diagnosis"}
    assert called <= set(models)


@pytest.mark.parametrize("name", ["rack-sweep", "server-repair", "diagnosis"])
def test_fixture_has_diagram_for_every_element(name: str) -> None:
    """The console draws these with bpmn-js: every element and flow needs a DI shape or edge."""
    from engine.bpmn.safe_xml import parse_xml

    model = load(name)
    root = parse_xml((FIXTURES / f"{name}.bpmn").read_bytes())
    drawn = {
        node.get("bpmnElement")
        for node in root.iter()
        if node.tag.endswith("}BPMNShape") or node.tag.endswith("}BPMNEdge")
    }
    assert (set(model.elements_by_id) - {name}) | set(model.flows_by_id) == drawn
