"""BPMN models the routing tests deploy through the proxy, built with tests.support's BPMN parts."""

from __future__ import annotations

from tests.support import flow, process_xml, sequence_process, service_task

START = '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'


def _end(incoming: str) -> str:
    return f'<bpmn:endEvent id="end"><bpmn:incoming>{incoming}</bpmn:incoming></bpmn:endEvent>'


def service_task_process(process_id: str, job_type: str, *, version_tag: str = "") -> bytes:
    """start -> service task (``job_type``) -> end. ``version_tag`` changes the content only, so
    deploying it again makes a new version."""
    return sequence_process(process_id, job_type, comment=version_tag)


def two_task_process(process_id: str, first_type: str, second_type: str) -> bytes:
    """start -> first -> second -> end: used to skip a step with process instance modification."""
    body = (
        START
        + service_task("first", first_type, "f1", "f2")
        + service_task("second", second_type, "f2", "f3")
        + _end("f3")
        + flow("f1", "start", "first")
        + flow("f2", "first", "second")
        + flow("f3", "second", "end")
    )
    return process_xml(process_id, body)


def empty_process(process_id: str) -> bytes:
    """start -> end: finishes at once (CreateProcessInstanceWithResult answers immediately)."""
    return process_xml(process_id, START + _end("f1") + flow("f1", "start", "end"))
