"""Event sub-processes (issue 14) through real clients (pyzeebe, zbctl): timer starts
(non-interrupting cycles beside a waiting task, interrupting inside an embedded sub-process)
and error starts (by code from a job's ThrowError, catch-all from an error end event)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pyzeebe import ZeebeClient

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    events,
    flow,
    instance_state,
    pi_intents,
    process_xml,
    pyzeebe_call,
    service_task,
    wait_for,
    write_file,
)
from tests.support.bpmn import START, end_event, timer_definition
from tests.zbctl import require_zbctl, run_zbctl


def event_sub_process(
    sub_id: str, definition: str, interrupting: bool, inner: str = "", inner_flows: str = ""
) -> str:
    """An event sub-process: start (with `definition`) -> [inner] -> end."""
    attribute = "" if interrupting else ' isInterrupting="false"'
    if inner:
        body = inner + flow(f"{sub_id}-f1", f"{sub_id}-start", "inner-task") + inner_flows
        body += end_event(f"{sub_id}-end", f"{sub_id}-f2")
        outgoing = f"{sub_id}-f1"
    else:
        body = end_event(f"{sub_id}-end", f"{sub_id}-f1") + flow(
            f"{sub_id}-f1", f"{sub_id}-start", f"{sub_id}-end"
        )
        outgoing = f"{sub_id}-f1"
    return (
        f'<bpmn:subProcess id="{sub_id}" triggeredByEvent="true">'
        f'<bpmn:startEvent id="{sub_id}-start"{attribute}><bpmn:outgoing>{outgoing}</bpmn:outgoing>{definition}'
        f"</bpmn:startEvent>{body}</bpmn:subProcess>"
    )


def run(address: str, path: Path, process_id: str, variables: dict[str, Any] | None = None) -> int:
    async def call(client: ZeebeClient) -> int:
        await client.deploy_resource(path)
        return int((await client.run_process(process_id, variables or {})).process_instance_key)

    return int(pyzeebe_call(address, call))


def zbctl_ok(address: str, *args: str) -> dict[str, Any]:
    result = run_zbctl(address, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


def test_non_interrupting_timer_event_sub_process_runs_beside_the_task(
    engine: EngineProcess, tmp_path: Path
) -> None:
    require_zbctl()
    body = (
        START
        + service_task("task", "esp-wait", "f0", "f1")
        + end_event("end", "f1")
        + flow("f0", "start", "task")
        + flow("f1", "task", "end")
        + event_sub_process("remind", timer_definition("timeCycle", "R2/PT0.3S"), interrupting=False)
    )
    path = write_file(tmp_path, "esp-remind.bpmn", process_xml("esp-remind", body))
    instance = run(engine.address, path, "esp-remind")
    data = engine.data_dir
    wait_for(
        lambda: pi_intents(data, instance, "remind").count("ELEMENT_COMPLETED") == 2, 15, "two reminders"
    )
    time.sleep(0.5)
    assert pi_intents(data, instance, "remind").count("ELEMENT_COMPLETED") == 2
    assert pi_intents(data, instance, "task")[-1] == "ELEMENT_ACTIVATED"
    remind = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="remind")
    assert {r["value"]["flowScopeKey"] for r in remind} == {instance}
    assert {r["value"]["bpmnElementType"] for r in remind} == {"EVENT_SUB_PROCESS"}
    starts = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="remind-start")
    assert {r["value"]["bpmnEventType"] for r in starts} == {"TIMER"}
    timers = events(data, valueType="TIMER", processInstanceKey=instance)
    assert [(r["intent"], r["value"]["elementInstanceKey"]) for r in timers] == [
        ("CREATED", instance),
        ("TRIGGERED", instance),
        ("CREATED", instance),
        ("TRIGGERED", instance),
    ]
    job = zbctl_ok(engine.address, "activate", "jobs", "esp-wait", "--maxJobsToActivate", "1")["jobs"][0]
    zbctl_ok(engine.address, "complete", "job", str(job["key"]))
    wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 15, "completion")
    assert pi_intents(data, instance, "task")[-1] == "ELEMENT_COMPLETED"


def test_interrupting_timer_event_sub_process_ends_its_scope(engine: EngineProcess, tmp_path: Path) -> None:
    # a sub-process whose task waits at a parallel join that never completes, interrupted by
    # its timer event sub-process; the process goes on after the sub-process
    inner = (
        '<bpmn:startEvent id="sub-start"><bpmn:outgoing>s0</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:parallelGateway id="fork"><bpmn:incoming>s0</bpmn:incoming><bpmn:outgoing>s1</bpmn:outgoing>'
        "<bpmn:outgoing>s2</bpmn:outgoing></bpmn:parallelGateway>"
        + service_task("slow", "esp-slow", "s1", "s3")
        + '<bpmn:parallelGateway id="join"><bpmn:incoming>s2</bpmn:incoming><bpmn:incoming>s3</bpmn:incoming>'
        "<bpmn:outgoing>s4</bpmn:outgoing></bpmn:parallelGateway>"
        + end_event("sub-end", "s4")
        + flow("s0", "sub-start", "fork")
        + flow("s1", "fork", "slow")
        + flow("s2", "fork", "join")
        + flow("s3", "slow", "join")
        + flow("s4", "join", "sub-end")
        + event_sub_process("deadline", timer_definition("timeDuration", "PT0.4S"), interrupting=True)
    )
    body = (
        START
        + f'<bpmn:subProcess id="sub"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>{inner}'
        "</bpmn:subProcess>" + end_event("end", "f1") + flow("f0", "start", "sub") + flow("f1", "sub", "end")
    )
    path = write_file(tmp_path, "esp-deadline.bpmn", process_xml("esp-deadline", body))
    instance = run(engine.address, path, "esp-deadline")
    data = engine.data_dir
    wait_for(
        lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 15, "completion after the deadline"
    )
    assert pi_intents(data, instance, "slow")[-1] == "ELEMENT_TERMINATED"
    assert [r["intent"] for r in events(data, valueType="JOB", processInstanceKey=instance)] == [
        "CREATED",
        "CANCELED",
    ]
    assert pi_intents(data, instance, "deadline")[-1] == "ELEMENT_COMPLETED"
    assert pi_intents(data, instance, "sub")[-1] == "ELEMENT_COMPLETED"
    assert pi_intents(data, instance, "end")[-1] == "ELEMENT_COMPLETED"
    assert not pi_intents(data, instance, "sub-end")


def test_error_event_sub_processes_catch_by_code_and_catch_all(engine: EngineProcess, tmp_path: Path) -> None:
    require_zbctl()
    handler = service_task("inner-task", "esp-handle", "handler-f1", "handler-f2")
    sub = (
        '<bpmn:subProcess id="sub"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>'
        '<bpmn:startEvent id="sub-start"><bpmn:outgoing>s0</bpmn:outgoing></bpmn:startEvent>'
        + service_task("work", "esp-work", "s0", "s1")
        + end_event("sub-end", "s1", '<bpmn:errorEventDefinition errorRef="other"/>')
        + flow("s0", "sub-start", "work")
        + flow("s1", "work", "sub-end")
        + "</bpmn:subProcess>"
    )
    body = (
        START
        + sub
        + end_event("end", "f1")
        + flow("f0", "start", "sub")
        + flow("f1", "sub", "end")
        + event_sub_process(
            "handler",
            '<bpmn:errorEventDefinition errorRef="fail"/>',
            interrupting=True,
            inner=handler,
            inner_flows=flow("handler-f2", "inner-task", "handler-end"),
        )
        + event_sub_process("any", "<bpmn:errorEventDefinition/>", interrupting=True)
    )
    extra = '<bpmn:error id="fail" errorCode="FAIL"/><bpmn:error id="other" errorCode="OTHER"/>'
    path = write_file(tmp_path, "esp-error.bpmn", process_xml("esp-error", body, extra))
    address = engine.address
    data = engine.data_dir

    # ThrowError FAIL from the job: the process-level handler for FAIL takes over
    first = run(address, path, "esp-error")
    job = zbctl_ok(address, "activate", "jobs", "esp-work", "--maxJobsToActivate", "1")["jobs"][0]
    assert int(job["processInstanceKey"]) == first
    thrown = run_zbctl(
        address,
        "throwError",
        "job",
        str(job["key"]),
        "--errorCode",
        "FAIL",
        "--errorMessage",
        "broken",
        "--variables",
        '{"reason": "disk"}',
    )
    assert thrown.returncode == 0, thrown.stderr
    handle = wait_for(
        lambda: zbctl_ok(address, "activate", "jobs", "esp-handle", "--maxJobsToActivate", "1").get("jobs"),
        10,
        "the handler's job",
    )[0]
    assert json.loads(handle["variables"])["reason"] == "disk"
    assert pi_intents(data, first, "work")[-1] == "ELEMENT_TERMINATED"
    assert pi_intents(data, first, "sub")[-1] == "ELEMENT_TERMINATED"
    zbctl_ok(address, "complete", "job", str(handle["key"]))
    wait_for(lambda: instance_state(data, first) == "ELEMENT_COMPLETED", 15, "completion through the handler")
    assert not pi_intents(data, first, "end") and not pi_intents(data, first, "any")

    # the error end event throws OTHER: only the catch-all handles it
    second = run(address, path, "esp-error")
    job = zbctl_ok(address, "activate", "jobs", "esp-work", "--maxJobsToActivate", "1")["jobs"][0]
    zbctl_ok(address, "complete", "job", str(job["key"]))
    wait_for(
        lambda: instance_state(data, second) == "ELEMENT_COMPLETED", 15, "completion through the catch-all"
    )
    assert pi_intents(data, second, "any")[-1] == "ELEMENT_COMPLETED"
    assert pi_intents(data, second, "sub")[-1] == "ELEMENT_TERMINATED"
    assert not pi_intents(data, second, "handler")
    assert not events(data, valueType="INCIDENT", processInstanceKey=second)
