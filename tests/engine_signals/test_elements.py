"""Issue 14 elements through real clients against `python -m engine`: inclusive gateway (fork,
default, incident, a join that waits for the two of three branches that were taken),
event-based gateway (signal or timer wins, the other closes), link events, none intermediate
throw events, manual and undefined tasks, zeebe:script and job-based script tasks, send tasks,
job-based message throw and end events, escalation (boundary interrupting and not, event
subprocess, into a calling parent, uncaught goes on) and the terminate end event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyzeebe import ZeebeClient
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate_one,
    complete,
    create,
    deploy,
    events,
    flow,
    gateway,
    instance_state,
    pi_intents,
    process_xml,
    pyzeebe_call,
    service_task,
    variables_of,
    wait_for,
)
from tests.support.bpmn import START, TERMINATE, end_event, node, start_event, timer_definition
from tests.zbctl import require_zbctl, run_zbctl


def completed(data: Path, instance: int) -> bool:
    return instance_state(data, instance) == "ELEMENT_COMPLETED"


def broadcast(address: str, name: str, variables: dict[str, Any] | None = None) -> None:
    async def run(client: ZeebeClient) -> None:
        await client.broadcast_signal(name, variables or {})

    pyzeebe_call(address, run)


# ---------------------------------------------------------------------- inclusive gateway
def inclusive_process(process_id: str, default: bool = False) -> bytes:
    attrs = ' default="fd"' if default else ""
    body = (
        START
        + node(
            "inclusiveGateway", "fork", ["f0"], ["fa", "fb", "fc"] + (["fd"] if default else []), attrs=attrs
        )
        + service_task("task-a", f"{process_id}-a", "fa", "ja")
        + service_task("task-b", f"{process_id}-b", "fb", "jb")
        + service_task("task-c", f"{process_id}-c", "fc", "jc")
        + node("inclusiveGateway", "join", ["ja", "jb", "jc"], ["f9"])
        + end_event("end", "f9")
        + flow("f0", "start", "fork")
        + flow("fa", "fork", "task-a", "=a")
        + flow("fb", "fork", "task-b", "=b")
        + flow("fc", "fork", "task-c", "=c")
        + flow("ja", "task-a", "join")
        + flow("jb", "task-b", "join")
        + flow("jc", "task-c", "join")
        + flow("f9", "join", "end")
    )
    if default:
        body += end_event("fallback", "fd") + flow("fd", "fork", "fallback")
    return process_xml(process_id, body)


def test_inclusive_gateway_join_waits_for_the_two_of_three_branches_taken(
    engine: EngineProcess, tmp_path: Path
) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "ig-join.bpmn", inclusive_process("ig-join"))
        instance = create(stub, "ig-join", {"a": True, "b": True, "c": False})
        wait_for(lambda: pi_intents(data, instance, "task-b")[-1:] == ["ELEMENT_ACTIVATED"], 10, "branch b")
        assert pi_intents(data, instance, "task-a")[-1] == "ELEMENT_ACTIVATED"
        assert not pi_intents(data, instance, "task-c")  # its condition was false
        taken = [
            r["value"]["elementId"]
            for r in events(data, intent="SEQUENCE_FLOW_TAKEN", processInstanceKey=instance)
        ]
        assert taken == ["f0", "fa", "fb"]
        complete(stub, activate_one(stub, "ig-join-a").key)
        wait_for(
            lambda: pi_intents(data, instance, "task-a")[-1:] == ["ELEMENT_COMPLETED"], 10, "branch a done"
        )
        assert not pi_intents(data, instance, "join")  # branch b can still arrive: the join waits
        assert instance_state(data, instance) == "ELEMENT_ACTIVATED"
        complete(stub, activate_one(stub, "ig-join-b").key)
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "join").count("ELEMENT_ACTIVATED") == 1  # one join for two tokens
    assert pi_intents(data, instance, "end").count("ELEMENT_COMPLETED") == 1


def test_inclusive_gateway_join_activates_when_the_other_branch_ends_elsewhere(
    engine: EngineProcess, tmp_path: Path
) -> None:
    """A branch that can no longer reach the join (its task was interrupted by a boundary
    event leading to an end event) stops the join from waiting for it."""
    body = (
        START
        + node("inclusiveGateway", "fork", ["f0"], ["fa", "fb"])
        + service_task("task-a", "ig-else-a", "fa", "ja")
        + service_task("task-b", "ig-else-b", "fb", "jb")
        + node(
            "boundaryEvent",
            "stop-b",
            [],
            ["fs"],
            '<bpmn:signalEventDefinition signalRef="sig"/>',
            attrs=' attachedToRef="task-b"',
        )
        + end_event("stopped", "fs")
        + node("inclusiveGateway", "join", ["ja", "jb"], ["f9"])
        + end_event("end", "f9")
        + flow("f0", "start", "fork")
        + flow("fa", "fork", "task-a", "=true")
        + flow("fb", "fork", "task-b", "=true")
        + flow("ja", "task-a", "join")
        + flow("jb", "task-b", "join")
        + flow("fs", "stop-b", "stopped")
        + flow("f9", "join", "end")
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(
            stub, "ig-else.bpmn", process_xml("ig-else", body, '<bpmn:signal id="sig" name="ig-else-stop"/>')
        )
        instance = create(stub, "ig-else")
        wait_for(lambda: pi_intents(data, instance, "task-b")[-1:] == ["ELEMENT_ACTIVATED"], 10, "branch b")
        complete(stub, activate_one(stub, "ig-else-a").key)
        wait_for(
            lambda: pi_intents(data, instance, "task-a")[-1:] == ["ELEMENT_COMPLETED"], 10, "branch a done"
        )
        assert not pi_intents(data, instance, "join")
        broadcast(engine.address, "ig-else-stop")
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "task-b")[-1] == "ELEMENT_TERMINATED"
    assert pi_intents(data, instance, "join").count("ELEMENT_COMPLETED") == 1


def test_inclusive_gateway_default_flow_and_incident(engine: EngineProcess, tmp_path: Path) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "ig-default.bpmn", inclusive_process("ig-default", default=True))
        deploy(stub, "ig-none.bpmn", inclusive_process("ig-none"))
        fallback = create(stub, "ig-default", {"a": False, "b": False, "c": False})
        stuck = create(stub, "ig-none", {"a": False, "b": False, "c": False})
        bad = create(stub, "ig-none", {"a": "yes", "b": False, "c": False})
    wait_for(lambda: completed(data, fallback), 10, "default flow taken")
    assert pi_intents(data, fallback, "fallback")[-1] == "ELEMENT_COMPLETED"
    for key, message in [
        (stuck, "Expected at least one condition to evaluate to true, or to have a default flow"),
        (bad, "Expected result of the expression 'a' to be 'BOOLEAN', but was 'STRING'."),
    ]:
        wait_for(lambda key=key: events(data, valueType="INCIDENT", processInstanceKey=key), 10, "incident")
        incident = events(data, valueType="INCIDENT", processInstanceKey=key)[0]["value"]
        assert (incident["errorType"], incident["errorMessage"]) == ("CONDITION_ERROR", message)
        assert not pi_intents(data, key, "task-a")


# ---------------------------------------------------------------------- event-based gateway
def event_gateway_process(process_id: str, signal_name: str, timer: str) -> bytes:
    body = (
        START
        + node("eventBasedGateway", "choose", ["f0"], ["fs", "ft"])
        + node(
            "intermediateCatchEvent",
            "on-signal",
            ["fs"],
            ["f1"],
            '<bpmn:signalEventDefinition signalRef="sig"/>',
        )
        + node(
            "intermediateCatchEvent",
            "on-timer",
            ["ft"],
            ["f2"],
            timer_definition("timeDuration", timer),
        )
        + end_event("by-signal", "f1")
        + end_event("by-timer", "f2")
        + flow("f0", "start", "choose")
        + flow("fs", "choose", "on-signal")
        + flow("ft", "choose", "on-timer")
        + flow("f1", "on-signal", "by-signal")
        + flow("f2", "on-timer", "by-timer")
    )
    return process_xml(process_id, body, f'<bpmn:signal id="sig" name="{signal_name}"/>')


def test_event_based_gateway_the_signal_wins_and_the_timer_is_canceled(
    engine: EngineProcess, tmp_path: Path
) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "eg-signal.bpmn", event_gateway_process("eg-signal", "eg-go", "PT1H"))
        instance = create(stub, "eg-signal")
    wait_for(
        lambda: pi_intents(data, instance, "choose")[-1:] == ["ELEMENT_ACTIVATED"], 10, "gateway waiting"
    )
    gateway_key = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="choose")[
        0
    ]["key"]
    timer = events(data, valueType="TIMER", intent="CREATED", processInstanceKey=instance)
    assert [r["value"]["targetElementId"] for r in timer] == ["on-timer"]
    assert timer[0]["value"]["elementInstanceKey"] == gateway_key
    broadcast(engine.address, "eg-go", {"winner": "signal"})
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "by-signal")[-1] == "ELEMENT_COMPLETED"
    assert not pi_intents(data, instance, "on-timer") and not pi_intents(data, instance, "by-timer")
    assert [r["intent"] for r in events(data, valueType="TIMER", processInstanceKey=instance)] == [
        "CREATED",
        "CANCELED",
    ]
    assert [
        r["intent"] for r in events(data, valueType="SIGNAL_SUBSCRIPTION", catchEventInstanceKey=gateway_key)
    ] == [
        "CREATED",
        "DELETED",
    ]
    assert variables_of(data, instance) == {"winner": "signal"}
    # the catch event that won is entered after the gateway completed, by its flow
    order = [
        (r["value"]["elementId"], r["intent"])
        for r in events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance)
        if r["value"]["elementId"] in ("choose", "fs", "on-signal")
    ]
    assert order[-7:] == [
        ("choose", "ELEMENT_COMPLETING"),
        ("choose", "ELEMENT_COMPLETED"),
        ("fs", "SEQUENCE_FLOW_TAKEN"),
        ("on-signal", "ELEMENT_ACTIVATING"),
        ("on-signal", "ELEMENT_ACTIVATED"),
        ("on-signal", "ELEMENT_COMPLETING"),
        ("on-signal", "ELEMENT_COMPLETED"),
    ]


def test_event_based_gateway_the_timer_wins_and_the_signal_subscription_closes(
    engine: EngineProcess, tmp_path: Path
) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "eg-timer.bpmn", event_gateway_process("eg-timer", "eg-never", "PT0.3S"))
        instance = create(stub, "eg-timer")
    wait_for(lambda: completed(data, instance), 15, "instance completed by the timer")
    assert pi_intents(data, instance, "by-timer")[-1] == "ELEMENT_COMPLETED"
    assert not pi_intents(data, instance, "on-signal")
    gateway_key = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="choose")[
        0
    ]["key"]
    assert [
        r["intent"] for r in events(data, valueType="SIGNAL_SUBSCRIPTION", catchEventInstanceKey=gateway_key)
    ] == [
        "CREATED",
        "DELETED",
    ]
    # a signal now reaches nobody of this instance
    broadcast(engine.address, "eg-never")
    assert not pi_intents(data, instance, "on-signal")


# ---------------------------------------------------------------------- pass-through elements
def test_link_none_throw_manual_and_undefined_tasks_pass_through(
    engine: EngineProcess, tmp_path: Path
) -> None:
    body = (
        START
        + node("manualTask", "manual", ["f0"], ["f1"])
        + node("task", "undefined", ["f1"], ["f2"])
        + node("intermediateThrowEvent", "milestone", ["f2"], ["f3"])
        + node("intermediateThrowEvent", "jump", ["f3"], [], '<bpmn:linkEventDefinition name="to-b"/>')
        + node("intermediateCatchEvent", "land", [], ["f4"], '<bpmn:linkEventDefinition name="to-b"/>')
        + end_event("end", "f4")
        + flow("f0", "start", "manual")
        + flow("f1", "manual", "undefined")
        + flow("f2", "undefined", "milestone")
        + flow("f3", "milestone", "jump")
        + flow("f4", "land", "end")
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "pass.bpmn", process_xml("pass-through", body))
        instance = create(stub, "pass-through")
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    for element_id in ("manual", "undefined", "milestone", "jump", "land", "end"):
        assert pi_intents(data, instance, element_id) == [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_COMPLETING",
            "ELEMENT_COMPLETED",
        ], element_id
    jump = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="jump")
    assert {r["value"]["bpmnEventType"] for r in jump} == {"LINK"}
    flows = [
        r["value"]["elementId"]
        for r in events(data, intent="SEQUENCE_FLOW_TAKEN", processInstanceKey=instance)
    ]
    assert flows == ["f0", "f1", "f2", "f3", "f4"]  # no flow between the link events


def test_terminate_end_event_ends_the_other_branches(engine: EngineProcess, tmp_path: Path) -> None:
    body = (
        START
        + node("parallelGateway", "split", ["f0"], ["fa", "fb"])
        + service_task("wait", "te-never", "fa", "fx")
        + end_event("never", "fx")
        + node("endEvent", "kill", ["fb"], [], TERMINATE)
        + flow("f0", "start", "split")
        + flow("fa", "split", "wait")
        + flow("fb", "split", "kill")
        + flow("fx", "wait", "never")
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "te.bpmn", process_xml("te", body))
        instance = create(stub, "te")
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "wait")[-1] == "ELEMENT_TERMINATED"
    assert [r["intent"] for r in events(data, valueType="JOB", processInstanceKey=instance)] == [
        "CREATED",
        "CANCELED",
    ]


# ---------------------------------------------------------------------- script and send tasks
def test_feel_script_task_sets_its_result_variable(engine: EngineProcess, tmp_path: Path) -> None:
    body = (
        START
        + node(
            "scriptTask",
            "total",
            ["f0"],
            ["f1"],
            '<bpmn:extensionElements><zeebe:script expression="=sum(prices) * 2" resultVariable="total"/>'
            "</bpmn:extensionElements>",
        )
        + end_event("end", "f1")
        + flow("f0", "start", "total")
        + flow("f1", "total", "end")
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "script.bpmn", process_xml("script-feel", body))
        instance = create(stub, "script-feel", {"prices": [1, 2, 3]})
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert variables_of(data, instance)["total"] == 12


def test_job_based_script_send_tasks_and_message_throw_events_run_as_jobs(
    engine: EngineProcess, tmp_path: Path
) -> None:
    require_zbctl()

    def job_node(
        tag: str, node_id: str, incoming: str, outgoing: str | None, job_type: str, inner: str = ""
    ) -> str:
        extension = (
            f'<bpmn:extensionElements><zeebe:taskDefinition type="{job_type}"/></bpmn:extensionElements>'
        )
        return node(tag, node_id, [incoming], [outgoing] if outgoing else [], extension + inner)

    message = '<bpmn:messageEventDefinition messageRef="msg"/>'
    body = (
        START
        + job_node("scriptTask", "script", "f0", "f1", "jb-script")
        + job_node("sendTask", "send", "f1", "f2", "jb-send")
        + job_node("intermediateThrowEvent", "notify", "f2", "f3", "jb-notify", message)
        + job_node("endEvent", "finish", "f3", None, "jb-finish", message)
        + flow("f0", "start", "script")
        + flow("f1", "script", "send")
        + flow("f2", "send", "notify")
        + flow("f3", "notify", "finish")
    )
    path = tmp_path / "jobs.bpmn"
    path.write_bytes(process_xml("job-based", body, '<bpmn:message id="msg" name="vendor-update"/>'))
    address, data = engine.address, engine.data_dir
    assert run_zbctl(address, "deploy", "resource", str(path)).returncode == 0
    created = run_zbctl(address, "create", "instance", "job-based")
    assert created.returncode == 0, created.stderr
    instance = int(json.loads(created.stdout)["processInstanceKey"])
    for job_type, element_id in [
        ("jb-script", "script"),
        ("jb-send", "send"),
        ("jb-notify", "notify"),
        ("jb-finish", "finish"),
    ]:
        activated = run_zbctl(address, "activate", "jobs", job_type, "--maxJobsToActivate", "1")
        assert activated.returncode == 0, activated.stderr
        jobs = json.loads(activated.stdout)["jobs"]
        assert len(jobs) == 1 and jobs[0]["elementId"] == element_id, activated.stdout
        done = run_zbctl(
            address, "complete", "job", str(jobs[0]["key"]), "--variables", f'{{"{element_id}": 1}}'
        )
        assert done.returncode == 0, done.stderr
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert variables_of(data, instance) == {"script": 1, "send": 1, "notify": 1, "finish": 1}
    notify = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="notify")
    assert {r["value"]["bpmnEventType"] for r in notify} == {"MESSAGE"}


# ---------------------------------------------------------------------- escalation
def escalation_defs() -> str:
    return '<bpmn:escalation id="esc" escalationCode="LATE"/><bpmn:escalation id="other" escalationCode="OTHER"/>'


def sub_with_escalation(throw_tag: str, ref: str = "esc") -> str:
    """A subprocess 'sub' whose inner path throws an escalation (end or intermediate throw)."""
    inner_start = start_event("s-start", "s0")
    definition = f'<bpmn:escalationEventDefinition escalationRef="{ref}"/>'
    if throw_tag == "endEvent":
        inner = (
            inner_start
            + node("endEvent", "s-throw", ["s0"], [], definition)
            + flow("s0", "s-start", "s-throw")
        )
    else:
        inner = (
            inner_start
            + node("intermediateThrowEvent", "s-throw", ["s0"], ["s1"], definition)
            + service_task("s-after", "esc-after", "s1", "s2")
            + end_event("s-end", "s2")
            + flow("s0", "s-start", "s-throw")
            + flow("s1", "s-throw", "s-after")
            + flow("s2", "s-after", "s-end")
        )
    return node("subProcess", "sub", ["f0"], ["f1"], inner)


def escalation_process(process_id: str, throw_tag: str, interrupting: bool | None, ref: str = "esc") -> bytes:
    body = (
        START
        + sub_with_escalation(throw_tag, ref)
        + end_event("end", "f1")
        + flow("f0", "start", "sub")
        + flow("f1", "sub", "end")
    )
    if interrupting is not None:
        cancel = "" if interrupting else ' cancelActivity="false"'
        body += (
            node(
                "boundaryEvent",
                "caught",
                [],
                ["fc"],
                '<bpmn:escalationEventDefinition escalationRef="esc"/>',
                attrs=f' attachedToRef="sub"{cancel}',
            )
            + end_event("handled", "fc")
            + flow("fc", "caught", "handled")
        )
    return process_xml(process_id, body, escalation_defs())


def test_escalation_end_event_caught_by_an_interrupting_boundary(
    engine: EngineProcess, tmp_path: Path
) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "esc-int.bpmn", escalation_process("esc-int", "endEvent", True))
        instance = create(stub, "esc-int")
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "handled")[-1] == "ELEMENT_COMPLETED"
    assert pi_intents(data, instance, "sub")[-1] == "ELEMENT_TERMINATED"
    assert not pi_intents(data, instance, "end")
    escalated = events(data, valueType="ESCALATION", processInstanceKey=instance)
    assert [
        (
            r["intent"],
            r["value"]["escalationCode"],
            r["value"]["throwElementId"],
            r["value"]["catchElementId"],
        )
        for r in escalated
    ] == [("ESCALATED", "LATE", "s-throw", "caught")]


def test_escalation_throw_caught_by_a_non_interrupting_boundary_goes_on(
    engine: EngineProcess, tmp_path: Path
) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "esc-non.bpmn", escalation_process("esc-non", "intermediateThrowEvent", False))
        instance = create(stub, "esc-non")
        wait_for(lambda: pi_intents(data, instance, "handled")[-1:] == ["ELEMENT_COMPLETED"], 10, "handled")
        assert pi_intents(data, instance, "sub")[-1] == "ELEMENT_ACTIVATED"  # the subprocess stays
        assert pi_intents(data, instance, "s-throw")[-1] == "ELEMENT_COMPLETED"
        complete(stub, activate_one(stub, "esc-after").key)
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "end")[-1] == "ELEMENT_COMPLETED"


def test_uncaught_escalation_is_not_an_incident(engine: EngineProcess, tmp_path: Path) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        # the boundary catches LATE only; OTHER is thrown
        deploy(stub, "esc-none.bpmn", escalation_process("esc-none", "endEvent", True, ref="other"))
        instance = create(stub, "esc-none")
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "end")[-1] == "ELEMENT_COMPLETED"
    assert not pi_intents(data, instance, "handled")
    assert not events(data, valueType="INCIDENT", processInstanceKey=instance)
    assert [
        (r["intent"], r["value"]["escalationCode"])
        for r in events(data, valueType="ESCALATION", processInstanceKey=instance)
    ] == [("NOT_ESCALATED", "OTHER")]


def test_escalation_reaches_the_call_activity_of_the_calling_parent(
    engine: EngineProcess, tmp_path: Path
) -> None:
    child_body = (
        START
        + node(
            "intermediateThrowEvent",
            "raise",
            ["f0"],
            ["f1"],
            '<bpmn:escalationEventDefinition escalationRef="esc"/>',
        )
        + service_task("child-work", "esc-child-work", "f1", "f2")
        + end_event("child-end", "f2")
        + flow("f0", "start", "raise")
        + flow("f1", "raise", "child-work")
        + flow("f2", "child-work", "child-end")
    )
    parent_body = (
        START
        + node(
            "callActivity",
            "call",
            ["f0"],
            ["f1"],
            '<bpmn:extensionElements><zeebe:calledElement processId="esc-child"/></bpmn:extensionElements>',
        )
        + end_event("end", "f1")
        + node(
            "boundaryEvent",
            "from-child",
            [],
            ["fb"],
            "<bpmn:escalationEventDefinition/>",  # catch-all, interrupting
            attrs=' attachedToRef="call"',
        )
        + end_event("child-escalated", "fb")
        + flow("f0", "start", "call")
        + flow("f1", "call", "end")
        + flow("fb", "from-child", "child-escalated")
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "esc-child.bpmn", process_xml("esc-child", child_body, escalation_defs()))
        deploy(stub, "esc-parent.bpmn", process_xml("esc-parent", parent_body, escalation_defs()))
        parent = create(stub, "esc-parent")
    wait_for(lambda: completed(data, parent), 10, "parent completed")
    assert pi_intents(data, parent, "child-escalated")[-1] == "ELEMENT_COMPLETED"
    assert pi_intents(data, parent, "call")[-1] == "ELEMENT_TERMINATED"
    assert not pi_intents(data, parent, "end")
    child = [
        r
        for r in events(data, valueType="PROCESS_INSTANCE", bpmnProcessId="esc-child", elementId="esc-child")
    ]
    assert child and child[-1]["intent"] == "ELEMENT_TERMINATED"
    escalated = events(data, valueType="ESCALATION", intent="ESCALATED", throwElementId="raise")
    assert [r["value"]["catchElementId"] for r in escalated] == ["from-child"]


def test_escalation_event_subprocess_non_interrupting(engine: EngineProcess, tmp_path: Path) -> None:
    body = (
        START
        + node(
            "intermediateThrowEvent",
            "raise",
            ["f0"],
            ["f1"],
            '<bpmn:escalationEventDefinition escalationRef="esc"/>',
        )
        + service_task("work", "esc-esp-work", "f1", "f2")
        + end_event("end", "f2")
        + flow("f0", "start", "raise")
        + flow("f1", "raise", "work")
        + flow("f2", "work", "end")
        + '<bpmn:subProcess id="on-late" triggeredByEvent="true">'
        '<bpmn:startEvent id="late-start" isInterrupting="false"><bpmn:outgoing>e0</bpmn:outgoing>'
        '<bpmn:escalationEventDefinition escalationRef="esc"/></bpmn:startEvent>'
        + end_event("late-end", "e0")
        + flow("e0", "late-start", "late-end")
        + "</bpmn:subProcess>"
    )
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "esc-esp.bpmn", process_xml("esc-esp", body, escalation_defs()))
        instance = create(stub, "esc-esp")
        wait_for(
            lambda: pi_intents(data, instance, "on-late")[-1:] == ["ELEMENT_COMPLETED"],
            10,
            "event subprocess",
        )
        complete(stub, activate_one(stub, "esc-esp-work").key)
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "raise")[-1] == "ELEMENT_COMPLETED"


def test_canceling_an_instance_at_an_event_based_gateway_closes_its_subscriptions(
    engine: EngineProcess, tmp_path: Path
) -> None:
    data = engine.data_dir
    with gateway(engine.address) as stub:
        deploy(stub, "eg-cancel.bpmn", event_gateway_process("eg-cancel", "eg-cancel-go", "PT1H"))
        instance = create(stub, "eg-cancel")
        wait_for(
            lambda: pi_intents(data, instance, "choose")[-1:] == ["ELEMENT_ACTIVATED"], 10, "gateway waiting"
        )
        stub.CancelProcessInstance(pb.CancelProcessInstanceRequest(processInstanceKey=instance), timeout=10)
    wait_for(lambda: instance_state(data, instance) == "ELEMENT_TERMINATED", 10, "instance canceled")
    assert pi_intents(data, instance, "choose")[-1] == "ELEMENT_TERMINATED"
    assert [r["intent"] for r in events(data, valueType="TIMER", processInstanceKey=instance)] == [
        "CREATED",
        "CANCELED",
    ]
    gateway_key = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="choose")[
        0
    ]["key"]
    assert [
        r["intent"] for r in events(data, valueType="SIGNAL_SUBSCRIPTION", catchEventInstanceKey=gateway_key)
    ] == [
        "CREATED",
        "DELETED",
    ]
    broadcast(engine.address, "eg-cancel-go")
    assert not pi_intents(data, instance, "on-signal")


def test_event_based_gateway_a_message_wins_over_a_signal_and_a_timer(
    engine: EngineProcess, tmp_path: Path
) -> None:
    require_zbctl()
    body = (
        START
        + node("eventBasedGateway", "choose", ["f0"], ["fm", "fs", "ft"])
        + node(
            "intermediateCatchEvent",
            "on-message",
            ["fm"],
            ["f1"],
            '<bpmn:messageEventDefinition messageRef="msg"/>',
        )
        + node(
            "intermediateCatchEvent",
            "on-signal",
            ["fs"],
            ["f2"],
            '<bpmn:signalEventDefinition signalRef="sig"/>',
        )
        + node(
            "intermediateCatchEvent",
            "on-timer",
            ["ft"],
            ["f3"],
            timer_definition("timeDuration", "PT1H"),
        )
        + end_event("by-message", "f1")
        + end_event("by-signal", "f2")
        + end_event("by-timer", "f3")
        + flow("f0", "start", "choose")
        + flow("fm", "choose", "on-message")
        + flow("fs", "choose", "on-signal")
        + flow("ft", "choose", "on-timer")
        + flow("f1", "on-message", "by-message")
        + flow("f2", "on-signal", "by-signal")
        + flow("f3", "on-timer", "by-timer")
    )
    extra = (
        '<bpmn:message id="msg" name="eg-vendor-answer"><bpmn:extensionElements>'
        '<zeebe:subscription correlationKey="=ticket"/></bpmn:extensionElements></bpmn:message>'
        '<bpmn:signal id="sig" name="eg-three-signal"/>'
    )
    path = tmp_path / "eg-three.bpmn"
    path.write_bytes(process_xml("eg-three", body, extra))
    address, data = engine.address, engine.data_dir
    assert run_zbctl(address, "deploy", "resource", str(path)).returncode == 0
    created = run_zbctl(address, "create", "instance", "eg-three", "--variables", '{"ticket": "T-9"}')
    assert created.returncode == 0, created.stderr
    instance = int(json.loads(created.stdout)["processInstanceKey"])
    wait_for(
        lambda: events(
            data, valueType="PROCESS_MESSAGE_SUBSCRIPTION", intent="CREATED", processInstanceKey=instance
        ),
        10,
        "message subscription open",
    )
    published = run_zbctl(
        address,
        "publish",
        "message",
        "eg-vendor-answer",
        "--correlationKey",
        "T-9",
        "--variables",
        '{"answer": "ok"}',
    )
    assert published.returncode == 0, published.stderr
    wait_for(lambda: completed(data, instance), 10, "instance completed")
    assert pi_intents(data, instance, "by-message")[-1] == "ELEMENT_COMPLETED"
    assert not pi_intents(data, instance, "on-signal") and not pi_intents(data, instance, "on-timer")
    assert variables_of(data, instance)["answer"] == "ok"
    assert [r["intent"] for r in events(data, valueType="TIMER", processInstanceKey=instance)] == [
        "CREATED",
        "CANCELED",
    ]
    gateway_key = events(data, valueType="PROCESS_INSTANCE", processInstanceKey=instance, elementId="choose")[
        0
    ]["key"]
    assert [
        r["intent"] for r in events(data, valueType="SIGNAL_SUBSCRIPTION", catchEventInstanceKey=gateway_key)
    ] == [
        "CREATED",
        "DELETED",
    ]
