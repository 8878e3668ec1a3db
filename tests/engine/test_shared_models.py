"""Every shared real-world BPMN model either deploys and runs, or is rejected with Zeebe's
INVALID_ARGUMENT message naming the resource and the element; none crashes the engine."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import grpc
from pyzeebe.proto import gateway_pb2 as pb

from engine.bpmn.parser import parse_bpmn
from tests.engine.conftest import SHARED_DATA, EngineProcess
from tests.engine.helpers import activate, complete, create, deploy, events, gateway
from tests.requirements import requires

BPMN_DIR = SHARED_DATA / "bpmn"
pytestmark = requires(BPMN_DIR.is_dir(), f"shared reference data not present at {BPMN_DIR}")

# callees first, so that call activities find their process at run time
DEPLOY_FIRST = [
    "zeebe-process-test__start-end.bpmn",
    "zeebe-process-test__alternate-start-end.bpmn",
    "zeebe-process-test__call-activity.bpmn",
]
START_VARIABLES = {"looping-servicetask": {"totalLoops": 3}}
# expected outcome of running each deployable process (an incident is a legitimate outcome)
EXPECTED_RUN = {
    "start-end": "completed",
    "alternate-start-end": "completed",
    "call-activity": "completed",
    "multiple-call-activity": "completed",
    "looping-servicetask": "completed",
    "fork-uncontrolled-join": "completed",
    "throw-bpmn-error": "completed",
    "FooProcess": "incident",  # calls BarProcess, which is not deployable (business rule task)
    "timer-start-event-daily": "start timer armed",  # R/P1D timer start event, no none start
    "Signal": "signal start subscribed",  # c8-js-sdk: only a signal start event
    "LoadTest": "incident",  # inclusive fork runs; its multi-instance '=listOfColors' comes from a connector
    "simple-link-events": "completed",  # lib-bpmn-engine: link events inside a subprocess
    "Process_Timer_Test_01": "completed",  # a job, then a 1 s intermediate timer
    "automatedTestsProcess": "completed",  # parallel multi-instance sub-process over a FEEL list
    # Two files define "process"; the later one, zeebe-redis-exporter__process (deployable since
    # messages run), wins: its '=key' (input mapping and correlation key) is unset, an incident.
    # camunda__ModelWalkerTest's "process" (a task, then a timer catch event) completes.
    "process": "incident",
    "BoundaryEventTest": "incident",  # its webhook message boundary's '=myCorrKey' is unset
    "demo2": "incident",  # its catch event's correlation key '=key' is not set: EXTRACT_VALUE_ERROR
    # event-based gateways (with messages, signals, timers), since both run:
    "event_based_gateway": "waiting for a message",  # process-test-coverage: message or signal
    "ordering-items-workflow": "incident",  # its gateway's message correlation key '=orderId' is unset
    "message-intermediate-timer-event": "incident",  # the gateway's timer duration variable is unset
    "solos-transport-process": "incident",  # correlation key '=captain' unset
    "subprocess_webhook": "incident",  # its gateway's correlation key '=myCorrKey' is unset
    "prCreatedProcess": "message start subscribed",  # pr-created: only a message start event
}


def manifest_notes() -> dict[str, str]:
    with open(BPMN_DIR / "MANIFEST.tsv", newline="") as handle:
        return {row["file"]: row["notes"] for row in csv.DictReader(handle, delimiter="\t")}


def model_files() -> list[Path]:
    files = sorted(p for p in BPMN_DIR.iterdir() if p.suffix in (".bpmn", ".dmn"))
    first = [BPMN_DIR / name for name in DEPLOY_FIRST]
    return first + [p for p in files if p not in first]


def run_instance(stub: object, data_dir: Path, process_id: str, job_types: set[str]) -> str:
    instance = create(stub, process_id, START_VARIABLES.get(process_id, {}))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for job_type in job_types:
            for job in activate(stub, job_type, max_jobs=20, request_timeout_ms=-1):
                complete(stub, job.key)
        tree = {
            r["value"]["processInstanceKey"]
            for r in events(data_dir, valueType="PROCESS_INSTANCE", parentProcessInstanceKey=instance)
        }
        tree.add(instance)
        if events(data_dir, valueType="PROCESS_INSTANCE", key=instance, intent="ELEMENT_COMPLETED"):
            return "completed"
        if any(
            events(data_dir, valueType="INCIDENT", intent="CREATED", processInstanceKey=key) for key in tree
        ):
            return "incident"
        time.sleep(0.05)
    timers = {r["key"]: r["intent"] for r in events(data_dir, valueType="TIMER", processInstanceKey=instance)}
    if "CREATED" in timers.values():
        return "waiting for a timer"  # legitimately: a timer longer than this test waits
    if events(
        data_dir, valueType="PROCESS_MESSAGE_SUBSCRIPTION", intent="CREATED", processInstanceKey=instance
    ):
        return "waiting for a message"  # legitimately: nobody publishes it here
    return "stuck"


def armed_start_timer(data_dir: Path, process_definition_key: int) -> str:
    """The outcome of a process that only a timer or a signal starts: its start timer is armed,
    or its signal start event subscribed."""
    signals = events(data_dir, valueType="SIGNAL_SUBSCRIPTION", processDefinitionKey=process_definition_key)
    if any(r["value"]["catchEventInstanceKey"] == -1 for r in signals):
        return "signal start subscribed"
    message_starts = events(
        data_dir,
        valueType="MESSAGE_START_EVENT_SUBSCRIPTION",
        intent="CREATED",
        processDefinitionKey=process_definition_key,
    )
    if message_starts:
        return "message start subscribed"
    armed = events(data_dir, valueType="TIMER", intent="CREATED", processDefinitionKey=process_definition_key)
    return (
        "start timer armed" if any(r["value"]["elementInstanceKey"] == -1 for r in armed) else "never starts"
    )


def has_none_start(path: Path, process_id: str) -> bool:
    return any(
        model.none_start_event is not None
        for model in parse_bpmn(path.name, path.read_bytes())
        if model.bpmn_process_id == process_id
    )


def test_shared_models_deploy_and_run_or_are_rejected(engine: EngineProcess) -> None:
    notes = manifest_notes()
    deployed: dict[str, set[str]] = {}
    files: dict[str, Path] = {}
    definition_keys: dict[str, int] = {}
    job_types: set[str] = set()
    with gateway(engine.address) as stub:
        for path in model_files():
            content = path.read_bytes()
            must_fail = notes.get(path.name, "").startswith(("INVALID", "MALFORMED", '"INVALID'))
            try:
                response = deploy(stub, path.name, content)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (path.name, error.details())
                details = error.details()
                assert details.startswith(
                    "Command 'CREATE' rejected with code 'INVALID_ARGUMENT': Expected to deploy new resources"
                ), details
                assert f"'{path.name}'" in details
                if path.suffix == ".bpmn" and "Failed to parse the XML" not in details:
                    assert "- Element: " in details, details
                continue
            assert not must_fail, f"{path.name} must be rejected ({notes[path.name]})"
            for deployment in response.deployments:
                if deployment.HasField("process"):
                    deployed[deployment.process.bpmnProcessId] = {path.name}
                    files[deployment.process.bpmnProcessId] = path
                    definition_keys[deployment.process.bpmnProcessId] = (
                        deployment.process.processDefinitionKey
                    )
            if path.suffix != ".bpmn":
                continue  # a DMN resource deploys decisions, not processes
            for model in parse_bpmn(path.name, content):
                for element in model.elements_by_id.values():
                    if element.job_type is not None and element.job_type.is_static:
                        job_types.add(element.job_type.text)

        assert set(deployed) == set(EXPECTED_RUN), sorted(deployed)
        outcomes = {
            process_id: run_instance(stub, engine.data_dir, process_id, job_types)
            if has_none_start(files[process_id], process_id)
            else armed_start_timer(engine.data_dir, definition_keys[process_id])
            for process_id in sorted(deployed)
        }
        assert outcomes == EXPECTED_RUN
        # the engine is still healthy and answers
        assert stub.Topology(pb.TopologyRequest()).clusterSize == 1

    looping = [
        r
        for r in events(
            engine.data_dir, valueType="JOB", intent="CREATED", bpmnProcessId="looping-servicetask"
        )
    ]
    assert len(looping) == 3
    fork = events(
        engine.data_dir,
        valueType="PROCESS_INSTANCE",
        bpmnProcessId="fork-uncontrolled-join",
        intent="ELEMENT_ACTIVATING",
    )
    by_element: dict[str, int] = {}
    for record in fork:
        by_element[record["value"]["elementId"]] = by_element.get(record["value"]["elementId"], 0) + 1
    assert max(by_element.values()) == 2, by_element  # the uncontrolled merge activates its target twice
