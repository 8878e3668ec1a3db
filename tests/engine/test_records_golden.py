"""Golden test: the records of one instance, field by field, against reference §3.3-3.8, and
the follow-up commands with the sourceRecordPosition of every record as a real Zeebe log has
them (../shared/data/records/zeebe-chaos__2021-11-11_zdb-log-print_entries.jsonl, positions
5-24: CREATE, ACTIVATE_ELEMENT of the process, of the start event with key -1,
COMPLETE_ELEMENT of the start event, ACTIVATE_ELEMENT of the flow's target with the key
taken with the flow, a none end event completing inside its activation, COMPLETE_ELEMENT of
the process)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from pyzeebe.proto import gateway_pb2 as pb

from engine.log import LogReader
from tests.engine.conftest import EngineProcess
from tests.engine.helpers import activate_one, complete, create, deploy, gateway, one_task_process

TOP_LEVEL = {
    "partitionId",
    "position",
    "sourceRecordPosition",
    "key",
    "timestamp",
    "recordType",
    "valueType",
    "intent",
    "rejectionType",
    "rejectionReason",
    "brokerVersion",
    "recordVersion",
    "authorizations",
    "value",
}
PI_VALUE = {
    "bpmnElementType",
    "elementId",
    "bpmnProcessId",
    "version",
    "processDefinitionKey",
    "processInstanceKey",
    "flowScopeKey",
    "bpmnEventType",
    "parentProcessInstanceKey",
    "parentElementInstanceKey",
    "tenantId",
}
JOB_VALUE = {
    "type",
    "worker",
    "retries",
    "retryBackoff",
    "recurringTime",
    "deadline",
    "timeout",
    "errorMessage",
    "errorCode",
    "customHeaders",
    "variables",
    "elementId",
    "elementInstanceKey",
    "bpmnProcessId",
    "processDefinitionVersion",
    "processDefinitionKey",
    "processInstanceKey",
    "tenantId",
}
VARIABLE_VALUE = {
    "name",
    "value",
    "scopeKey",
    "processInstanceKey",
    "processDefinitionKey",
    "bpmnProcessId",
    "tenantId",
}
INCIDENT_VALUE = {
    "errorType",
    "errorMessage",
    "bpmnProcessId",
    "processDefinitionKey",
    "processInstanceKey",
    "elementId",
    "elementInstanceKey",
    "jobKey",
    "variableScopeKey",
    "tenantId",
}
FIRST_KEY = 2251799813685249  # (1 << 51) + 1, reference §2.1


def describe(record: dict) -> tuple:
    value = record["value"]
    if record["valueType"] == "PROCESS_INSTANCE":
        return (record["valueType"], record["intent"], value["bpmnElementType"], value["elementId"])
    if record["valueType"] == "VARIABLE":
        return (record["valueType"], record["intent"], value["name"], value["value"])
    return (record["valueType"], record["intent"])


def test_start_service_task_end_records(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "data", partitions=1).start()
    try:
        resource = one_task_process("golden", "golden-work")
        with gateway(engine.address) as stub:
            deployment = deploy(stub, "golden.bpmn", resource)
            instance = create(stub, "golden", {"x": 1})
            job = activate_one(stub, "golden-work")
            complete(stub, job.key, {"y": "two"})
        records = LogReader(engine.data_dir, 1).read()
    finally:
        engine.stop()

    # ---- every record: the §3.3 envelope, consecutive positions
    assert [r["position"] for r in records] == list(range(1, len(records) + 1))
    by_position = {r["position"]: r for r in records}
    for record in records:
        assert set(record) == TOP_LEVEL
        assert record["partitionId"] == 1
        assert record["brokerVersion"] == "8.5.0"
        assert record["recordVersion"] == 1
        assert record["rejectionType"] == "NULL_VAL" and record["rejectionReason"] == ""
        assert isinstance(record["timestamp"], int) and record["timestamp"] > 1_600_000_000_000
        if record["recordType"] == "EVENT" and record["sourceRecordPosition"] != -1:
            assert by_position[record["sourceRecordPosition"]]["recordType"] == "COMMAND"
            assert record["sourceRecordPosition"] < record["position"]

    # ---- every record from the creation on: (position, source, type, value type, intent, element)
    start = next(r["position"] for r in records if r["valueType"] == "PROCESS_INSTANCE_CREATION")
    relative = [
        (
            r["position"] - start,
            r["sourceRecordPosition"] - start if r["sourceRecordPosition"] != -1 else None,
            r["recordType"],
            r["valueType"],
            r["intent"],
            r["value"].get("elementId"),
        )
        for r in records
        if r["position"] >= start
    ]
    C, E, PI = "COMMAND", "EVENT", "PROCESS_INSTANCE"
    assert relative == [
        (0, None, C, "PROCESS_INSTANCE_CREATION", "CREATE", None),
        (1, 0, E, "VARIABLE", "CREATED", None),
        (2, 0, C, PI, "ACTIVATE_ELEMENT", "golden"),
        (3, 0, E, "PROCESS_INSTANCE_CREATION", "CREATED", None),
        (4, 2, E, PI, "ELEMENT_ACTIVATING", "golden"),
        (5, 2, E, PI, "ELEMENT_ACTIVATED", "golden"),
        (6, 2, C, PI, "ACTIVATE_ELEMENT", "start"),
        (7, 6, E, PI, "ELEMENT_ACTIVATING", "start"),
        (8, 6, E, PI, "ELEMENT_ACTIVATED", "start"),
        (9, 6, C, PI, "COMPLETE_ELEMENT", "start"),
        (10, 9, E, PI, "ELEMENT_COMPLETING", "start"),
        (11, 9, E, PI, "ELEMENT_COMPLETED", "start"),
        (12, 9, E, PI, "SEQUENCE_FLOW_TAKEN", "f1"),
        (13, 9, C, PI, "ACTIVATE_ELEMENT", "task"),
        (14, 13, E, PI, "ELEMENT_ACTIVATING", "task"),
        (15, 13, E, "JOB", "CREATED", "task"),
        (16, 13, E, PI, "ELEMENT_ACTIVATED", "task"),
        (17, None, E, "JOB_BATCH", "ACTIVATED", None),
        (18, None, C, "JOB", "COMPLETE", None),
        (19, 18, E, "JOB", "COMPLETED", "task"),
        (20, 18, C, PI, "COMPLETE_ELEMENT", "task"),
        (21, 20, E, PI, "ELEMENT_COMPLETING", "task"),
        (22, 20, E, "VARIABLE", "CREATED", None),
        (23, 20, E, PI, "ELEMENT_COMPLETED", "task"),
        (24, 20, E, PI, "SEQUENCE_FLOW_TAKEN", "f2"),
        (25, 20, C, PI, "ACTIVATE_ELEMENT", "end"),
        (26, 25, E, PI, "ELEMENT_ACTIVATING", "end"),
        (27, 25, E, PI, "ELEMENT_ACTIVATED", "end"),
        (28, 25, E, PI, "ELEMENT_COMPLETING", "end"),
        (29, 25, E, PI, "ELEMENT_COMPLETED", "end"),
        (30, 25, C, PI, "COMPLETE_ELEMENT", "golden"),
        (31, 30, E, PI, "ELEMENT_COMPLETING", "golden"),
        (32, 30, E, PI, "ELEMENT_COMPLETED", "golden"),
    ]
    # ---- follow-up commands: keys and values as Zeebe writes them
    for record in records:
        if record["recordType"] != "COMMAND" or record["valueType"] != PI:
            continue
        value = record["value"]
        assert set(value) == PI_VALUE
        assert record["rejectionType"] == "NULL_VAL"
        events_of = [r for r in records if r["sourceRecordPosition"] == record["position"]]
        if record["intent"] == "ACTIVATE_ELEMENT":
            activating = events_of[0]
            assert activating["intent"] == "ELEMENT_ACTIVATING" and activating["value"] == value
            if value["bpmnElementType"] == "START_EVENT":
                assert record["key"] == -1  # activateChildInstance: the key is taken on processing
            else:
                assert record["key"] == activating["key"]
        else:
            completing = events_of[0]
            assert completing["intent"] == "ELEMENT_COMPLETING"
            assert record["key"] == completing["key"] and completing["value"] == value
    by_intent = {(r["recordType"], r["intent"], r["value"].get("elementId")): r for r in records}
    assert by_intent[("COMMAND", "ACTIVATE_ELEMENT", "golden")]["key"] == instance
    # the flow's target key is taken right after the flow's (Zeebe's activateElementInstanceInFlowScope)
    assert by_intent[("COMMAND", "ACTIVATE_ELEMENT", "task")]["key"] == (
        by_intent[("EVENT", "SEQUENCE_FLOW_TAKEN", "f1")]["key"] + 1
    )

    events = [r for r in records if r["recordType"] == "EVENT"]
    # ---- deployment: keys from partition 1 (process key first, then the deployment key)
    process_record, deployment_record = events[0], events[1]
    assert describe(process_record) == ("PROCESS", "CREATED")
    assert process_record["key"] == FIRST_KEY == deployment.deployments[0].process.processDefinitionKey
    assert base64.b64decode(process_record["value"]["resource"]) == resource
    assert (
        base64.b64decode(process_record["value"]["checksum"])
        == hashlib.md5(resource, usedforsecurity=False).digest()
    )
    assert process_record["value"]["version"] == 1 and process_record["value"]["duplicate"] is False
    assert describe(deployment_record) == ("DEPLOYMENT", "CREATED")
    assert deployment_record["key"] == deployment.key
    assert deployment_record["value"]["processesMetadata"][0]["processDefinitionKey"] == FIRST_KEY

    instance_events = [r for r in events[2:] if r["valueType"] != "JOB_BATCH"]
    assert [describe(r) for r in instance_events] == [
        ("VARIABLE", "CREATED", "x", "1"),
        ("PROCESS_INSTANCE_CREATION", "CREATED"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", "PROCESS", "golden"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", "PROCESS", "golden"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", "START_EVENT", "start"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", "START_EVENT", "start"),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETING", "START_EVENT", "start"),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "START_EVENT", "start"),
        ("PROCESS_INSTANCE", "SEQUENCE_FLOW_TAKEN", "SEQUENCE_FLOW", "f1"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", "SERVICE_TASK", "task"),
        ("JOB", "CREATED"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", "SERVICE_TASK", "task"),
        ("JOB", "COMPLETED"),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETING", "SERVICE_TASK", "task"),
        ("VARIABLE", "CREATED", "y", '"two"'),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "SERVICE_TASK", "task"),
        ("PROCESS_INSTANCE", "SEQUENCE_FLOW_TAKEN", "SEQUENCE_FLOW", "f2"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATING", "END_EVENT", "end"),
        ("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", "END_EVENT", "end"),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETING", "END_EVENT", "end"),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "END_EVENT", "end"),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETING", "PROCESS", "golden"),
        ("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "PROCESS", "golden"),
    ]
    variable_x, creation = instance_events[0], instance_events[1]
    assert set(variable_x["value"]) == VARIABLE_VALUE
    assert variable_x["value"]["scopeKey"] == instance == variable_x["value"]["processInstanceKey"]
    assert creation["key"] == instance and creation["value"]["processInstanceKey"] == instance
    assert creation["value"]["variables"] == {"x": 1}

    task_key = job.elementInstanceKey
    for record in instance_events:
        if record["valueType"] != "PROCESS_INSTANCE":
            continue
        value = record["value"]
        assert set(value) == PI_VALUE
        assert value["processInstanceKey"] == instance
        assert (
            value["processDefinitionKey"] == FIRST_KEY
            and value["version"] == 1
            and value["bpmnProcessId"] == "golden"
        )
        assert value["parentProcessInstanceKey"] == -1 and value["parentElementInstanceKey"] == -1
        assert value["tenantId"] == "<default>"
        if value["bpmnElementType"] == "PROCESS":
            assert (
                record["key"] == instance
                and value["flowScopeKey"] == -1
                and value["bpmnEventType"] == "UNSPECIFIED"
            )
        else:
            assert value["flowScopeKey"] == instance
        if value["bpmnElementType"] in ("START_EVENT", "END_EVENT"):
            assert value["bpmnEventType"] == "NONE"
        if value["bpmnElementType"] == "SERVICE_TASK":
            assert record["key"] == task_key and value["bpmnEventType"] == "UNSPECIFIED"
    flows = [r for r in instance_events if r["intent"] == "SEQUENCE_FLOW_TAKEN"]
    element_keys = {r["key"] for r in instance_events if r["intent"] == "ELEMENT_ACTIVATING"}
    assert len({r["key"] for r in flows}) == 2 and not {r["key"] for r in flows} & element_keys

    job_created, job_completed = instance_events[10], instance_events[12]
    assert set(job_created["value"]) == JOB_VALUE
    assert job_created["key"] == job.key == job_completed["key"]
    created_value = job_created["value"]
    assert (
        created_value["deadline"] == -1 and created_value["worker"] == "" and created_value["variables"] == {}
    )
    assert created_value["retries"] == 3 and created_value["type"] == "golden-work"
    assert created_value["elementInstanceKey"] == task_key and created_value["processDefinitionVersion"] == 1
    assert created_value["customHeaders"] == {} and created_value["recurringTime"] == -1
    assert job_completed["value"]["variables"] == {"y": "two"}
    assert instance_events[14]["value"]["scopeKey"] == instance  # propagated to the root scope

    batch = next(r for r in events if r["valueType"] == "JOB_BATCH")
    assert batch["intent"] == "ACTIVATED"
    assert batch["value"]["jobKeys"] == [job.key]
    assert batch["value"]["jobs"][0]["worker"] == "test-worker"
    assert batch["value"]["jobs"][0]["variables"] == {"x": 1}


def test_failure_incident_path_records(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "data", partitions=1).start()
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "golden.bpmn", one_task_process("golden-fail", "golden-fail-work"))
            instance = create(stub, "golden-fail")
            job = activate_one(stub, "golden-fail-work")
            stub.FailJob(pb.FailJobRequest(jobKey=job.key, retries=0, errorMessage="no disk"))
            records = [r for r in LogReader(engine.data_dir, 1).read() if r["recordType"] == "EVENT"]
            incident = next(r for r in records if r["valueType"] == "INCIDENT")
            stub.UpdateJobRetries(pb.UpdateJobRetriesRequest(jobKey=job.key, retries=2))
            stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
            again = activate_one(stub, "golden-fail-work")
        records = [r for r in LogReader(engine.data_dir, 1).read() if r["recordType"] == "EVENT"]
    finally:
        engine.stop()

    tail = [describe(r) for r in records if r["valueType"] in ("JOB", "INCIDENT")]
    assert tail == [
        ("JOB", "CREATED"),
        ("JOB", "FAILED"),
        ("INCIDENT", "CREATED"),
        ("JOB", "RETRIES_UPDATED"),
        ("INCIDENT", "RESOLVED"),
    ]
    failed = next(r for r in records if r["valueType"] == "JOB" and r["intent"] == "FAILED")
    assert failed["value"]["retries"] == 0 and failed["value"]["errorMessage"] == "no disk"
    incident = next(r for r in records if r["valueType"] == "INCIDENT" and r["intent"] == "CREATED")
    assert set(incident["value"]) == INCIDENT_VALUE
    value = incident["value"]
    assert value["errorType"] == "JOB_NO_RETRIES" and value["errorMessage"] == "no disk"
    assert value["jobKey"] == job.key and value["elementInstanceKey"] == job.elementInstanceKey
    assert value["variableScopeKey"] == job.elementInstanceKey and value["processInstanceKey"] == instance
    assert value["elementId"] == "task" and value["bpmnProcessId"] == "golden-fail"
    retries = next(r for r in records if r["intent"] == "RETRIES_UPDATED")
    assert retries["value"]["retries"] == 2 and retries["key"] == job.key
    resolved = next(r for r in records if r["valueType"] == "INCIDENT" and r["intent"] == "RESOLVED")
    assert resolved["key"] == incident["key"] and resolved["value"] == incident["value"]
    assert again.key == job.key and again.retries == 2
    assert json.loads(again.customHeaders) == {}
