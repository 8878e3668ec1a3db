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


def message_start_process(process_id: str, message_name: str, job_type: str) -> bytes:
    """message start event (``message_name``) -> service task (``job_type``) -> end: each
    instance stays active until its job completes."""
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing>'
        '<bpmn:messageEventDefinition messageRef="start-msg"/></bpmn:startEvent>'
        + service_task("task", job_type, "f1", "f2")
        + _end("f2")
        + flow("f1", "start", "task")
        + flow("f2", "task", "end")
    )
    extra = f'<bpmn:message id="start-msg" name="{message_name}"/>'
    return process_xml(process_id, body, extra)


def message_catch_process(process_id: str, message_name: str) -> bytes:
    """start -> intermediate message catch (``message_name``, correlation key = variable
    ``key``) -> end."""
    body = (
        START + '<bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f1</bpmn:incoming>'
        "<bpmn:outgoing>f2</bpmn:outgoing>"
        '<bpmn:messageEventDefinition messageRef="catch-msg"/></bpmn:intermediateCatchEvent>'
        + _end("f2")
        + flow("f1", "start", "wait")
        + flow("f2", "wait", "end")
    )
    extra = (
        f'<bpmn:message id="catch-msg" name="{message_name}"><bpmn:extensionElements>'
        '<zeebe:subscription correlationKey="=key"/></bpmn:extensionElements></bpmn:message>'
    )
    return process_xml(process_id, body, extra)
