"""Helpers that wrap hand-written BPMN fragments into deployable documents."""

from __future__ import annotations

import pytest

from engine.bpmn import BpmnValidationError, ProcessModel, parse_bpmn

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"


def document(body: str, *, process_id: str = "p", extra: str = "", executable: str = "true") -> bytes:
    """A definitions document with one process whose content is `body`."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:zeebe="{ZEEBE_NS}"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="definitions" targetNamespace="http://fleetflow.example/test">
  {extra}
  <bpmn:process id="{process_id}" isExecutable="{executable}">
    {body}
  </bpmn:process>
</bpmn:definitions>
""".encode()


def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}" />'
    return (
        f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}'
        "</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def service_task(task_id: str, job_type: str = "work", extra: str = "") -> str:
    return (
        f'<bpmn:serviceTask id="{task_id}"><bpmn:extensionElements>'
        f'<zeebe:taskDefinition type="{job_type}" />{extra}'
        "</bpmn:extensionElements></bpmn:serviceTask>"
    )


def around(middle: str, first: str, last: str) -> str:
    """`start -> first ... last -> end` around `middle` (which must connect first to last)."""
    return (
        '<bpmn:startEvent id="start" /><bpmn:endEvent id="end" />'
        + middle
        + flow("flow-start", "start", first)
        + flow("flow-end", last, "end")
    )


def parse_one(body: str, **kwargs: str) -> ProcessModel:
    models = parse_bpmn("test.bpmn", document(body, **kwargs))
    assert len(models) == 1
    return models[0]


def rejection(content: bytes, resource_name: str = "test.bpmn") -> BpmnValidationError:
    with pytest.raises(BpmnValidationError) as caught:
        parse_bpmn(resource_name, content)
    return caught.value


def problems_of(body: str, **kwargs: str) -> list[tuple[str | None, str]]:
    """(element identifier, message) of every problem of the document around `body`."""
    error = rejection(document(body, **kwargs))
    return [(problem.element_identifier, problem.message) for problem in error.problems]
