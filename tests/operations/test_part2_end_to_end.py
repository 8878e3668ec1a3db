"""By hand on a job, end to end (issue 19, must show): two `python -m engine` clusters behind
`python -m routing`, a real Celery worker, `import_records --follow`. What happened is counted in
the owning engine's own log."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import grpc
import pytest

from processes.models import ElementInstance, Job, ProcessInstance
from processes.operations import services
from processes.operations.models import Operation
from processes.roles import Role
from routing.keys import cluster_of
from tests.operations import factories as f
from tests.operations.stack import BPMN, ZEEBE, Stack, count_records, linear_process, service_task
from tests.operations.test_end_to_end import imported, local, settled
from tests.routing.harness import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def boundary_process(process_id: str) -> bytes:
    """start -> work (error boundary 'NOT_REPAIRABLE' -> handle -> end-caught) -> end."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions {BPMN} {ZEEBE} id="d" '
        f'targetNamespace="http://fleetflow.test"><bpmn:error id="err" errorCode="NOT_REPAIRABLE"/>'
        f'<bpmn:process id="{process_id}" isExecutable="true"><bpmn:startEvent id="start"/>'
        f'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>'
        f"{service_task('work', f'{process_id}-work')}"
        f'<bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end"/><bpmn:endEvent id="end"/>'
        f'<bpmn:boundaryEvent id="caught" attachedToRef="work"><bpmn:errorEventDefinition errorRef="err"/>'
        f"</bpmn:boundaryEvent>"
        f'<bpmn:sequenceFlow id="f3" sourceRef="caught" targetRef="handle"/>'
        f"{service_task('handle', f'{process_id}-handle')}"
        f'<bpmn:sequenceFlow id="f4" sourceRef="handle" targetRef="end-caught"/><bpmn:endEvent id="end-caught"/>'
        f"</bpmn:process></bpmn:definitions>"
    ).encode()


@pytest.fixture(scope="module", autouse=True)
def deployed(clusters: Stack) -> None:
    gateway = clusters.gateway()
    try:
        gateway.deploy("p2-race.bpmn", linear_process("p2-race", "diagnose", "repair"))
        gateway.deploy("p2-error.bpmn", boundary_process("p2-error"))
    finally:
        gateway.close()


def test_complete_by_hand_while_a_worker_races_completes_once(stack: Stack) -> None:
    """The operator completes a job by hand while the worker holding it completes it too, at
    offsets from 0 to 350 ms. Per job exactly one wins: the other gets NOT_FOUND, the engine's log
    has one JOB COMPLETED, and 'repair' is activated once."""
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    count = 8
    try:
        instances = [gateway.create("p2-race", {"serverSn": f"SN-{n}"}) for n in range(count)]
        jobs = {job.processInstanceKey: job for job in gateway.activate_all("p2-race-diagnose", count)}
        assert set(jobs) == set(instances)
        rows = {key: imported(Job, process_instance_id=key, state="activated") for key in instances}
        worker_answers: dict[int, str] = {}

        def worker_completes(instance_key: int, delay: float) -> None:
            if delay < 0:  # the late worker: completes only after the operation has settled
                operation = operations[instance_key]
                wait_for(
                    lambda: Operation.objects.filter(
                        pk=operation.pk, state__in=["confirmed", "failed"]
                    ).exists(),
                    60,
                    what="the hand completion to settle",
                )
            time.sleep(max(0.0, delay))
            try:
                gateway.complete(jobs[instance_key].key, {"by": "worker"})
                worker_answers[instance_key] = "ok"
            except grpc.RpcError as error:
                worker_answers[instance_key] = error.code().name

        threads = []
        operations: dict[int, Operation] = {}
        for index, instance_key in enumerate(instances):
            operations[instance_key] = services.operation_complete_job(
                actor=operator, job=rows[instance_key], variables={"by": "operator"}
            )
            # Offsets 0-1.5 s around the operation's run; the last worker is always late.
            delay = -1.0 if index == count - 1 else 0.25 * index
            thread = threading.Thread(target=worker_completes, args=(instance_key, delay))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(30)
        settled_ops = {key: settled(op, 60, states=("confirmed", "failed")) for key, op in operations.items()}
    finally:
        gateway.close()

    wins = {"operator": 0, "worker": 0}
    for instance_key in instances:
        operation = settled_ops[instance_key]
        operator_won = operation.state == "confirmed"
        worker_won = worker_answers[instance_key] == "ok"
        assert operator_won != worker_won, (instance_key, operation.state, operation.error, worker_answers)
        if operator_won:
            assert not operation.already_done and operation.attempts == 1
            assert worker_answers[instance_key] == "NOT_FOUND"
            wins["operator"] += 1
        else:
            assert operation.error_code == "NOT_FOUND" and "job" in operation.error
            wins["worker"] += 1
        records = stack.records(cluster_of(instance_key))
        job_key = local(jobs[instance_key].key)
        assert count_records(records, "JOB", "COMPLETED", key=job_key) == 1
        assert (
            count_records(
                records,
                "PROCESS_INSTANCE",
                "ELEMENT_ACTIVATED",
                processInstanceKey=local(instance_key),
                elementId="repair",
            )
            == 1
        )
    assert wins["operator"] + wins["worker"] == count
    assert wins["operator"] >= 1  # at least the late worker's job
    # Which side wins an early offset depends on the Celery worker's pick-up time; both outcomes
    # are checked above whichever won.
    print("race wins:", wins)


def test_throw_error_by_hand_is_caught_by_the_boundary_event(stack: Stack) -> None:
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    try:
        instance_key = gateway.create("p2-error", {"serverSn": "SN-ERR"})
        job = imported(Job, process_instance_id=instance_key, element_id="work")
        operation = services.operation_throw_error(
            actor=operator,
            job=job,
            error_code="NOT_REPAIRABLE",
            error_message="PSU burnt, worker gone",
            variables={"why": "psu"},
        )
        operation = settled(operation)
        assert "NOT_REPAIRABLE" in operation.result
        # The boundary path runs: its job sees the thrown variables, and the instance completes.
        handle = gateway.activate_all("p2-error-handle", 1)[0]
        assert handle.processInstanceKey == instance_key
        variables: dict[str, Any] = json.loads(handle.variables)
        assert variables.get("why") == "psu"
        gateway.complete(handle.key)
    finally:
        gateway.close()
    wait_for(
        lambda: ProcessInstance.objects.filter(key=instance_key, state="completed").exists(),
        60,
        what="the instance to complete along the boundary path",
    )
    records = stack.records(cluster_of(instance_key))
    assert count_records(records, "JOB", "ERROR_THROWN", key=local(job.key)) == 1
    assert count_records(records, "INCIDENT", "CREATED", processInstanceKey=local(instance_key)) == 0
    for element_id, intent in (
        ("caught", "ELEMENT_ACTIVATED"),
        ("work", "ELEMENT_TERMINATED"),
        ("end", "ELEMENT_ACTIVATED"),
    ):
        expected = 0 if element_id == "end" else 1
        assert (
            count_records(
                records,
                "PROCESS_INSTANCE",
                intent,
                processInstanceKey=local(instance_key),
                elementId=element_id,
            )
            == expected
        ), (element_id, intent)


# -- modification ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def deployed_for_modify(clusters: Stack) -> None:
    gateway = clusters.gateway()
    try:
        for process_id in ("p2-move", "p2-rerun", "p2-refuse", "p2-batch"):
            gateway.deploy(f"{process_id}.bpmn", linear_process(process_id, "diagnose", "repair"))
    finally:
        gateway.close()


def element_events(stack: Stack, instance_key: int, intent: str, element_id: str) -> int:
    return count_records(
        stack.records(cluster_of(instance_key)),
        "PROCESS_INSTANCE",
        intent,
        processInstanceKey=local(instance_key),
        elementId=element_id,
    )


def completed(instance_key: int) -> None:
    wait_for(
        lambda: ProcessInstance.objects.filter(key=instance_key, state="completed").exists(),
        60,
        what=f"instance {instance_key} to complete",
    )


def test_move_a_token_past_a_stuck_step_and_the_flow_completes(stack: Stack) -> None:
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    try:
        instance_key = gateway.create("p2-move", {"serverSn": "SN-MOVE"})
        stuck = imported(ElementInstance, process_instance_id=instance_key, element_id="diagnose")
        instance = ProcessInstance.objects.get(key=instance_key)
        operation = services.operation_modify(
            actor=operator,
            process_instance=instance,
            activate=[{"element_id": "repair", "variables": {"movedBy": "otto"}}],
            terminate=[stuck.key],
        )
        operation = settled(operation)
        assert operation.attempts == 1 and not operation.already_done
        repair = gateway.activate_all("p2-move-repair", 1)[0]
        assert repair.processInstanceKey == instance_key
        assert json.loads(repair.variables).get("movedBy") == "otto"
        gateway.complete(repair.key)
    finally:
        gateway.close()
    completed(instance_key)
    assert element_events(stack, instance_key, "ELEMENT_TERMINATED", "diagnose") == 1
    assert element_events(stack, instance_key, "ELEMENT_COMPLETED", "diagnose") == 0
    assert element_events(stack, instance_key, "ELEMENT_ACTIVATED", "repair") == 1
    assert (
        count_records(
            stack.records(cluster_of(instance_key)),
            "PROCESS_INSTANCE_MODIFICATION",
            "MODIFIED",
            processInstanceKey=local(instance_key),
        )
        == 1
    )


def test_add_a_token_to_rerun_a_step(stack: Stack) -> None:
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    try:
        instance_key = gateway.create("p2-rerun", {"serverSn": "SN-RERUN"})
        gateway.complete(gateway.activate_all("p2-rerun-diagnose", 1)[0].key)
        imported(ElementInstance, process_instance_id=instance_key, element_id="repair", state="active")
        operation = services.operation_modify(
            actor=operator,
            process_instance=ProcessInstance.objects.get(key=instance_key),
            activate=[{"element_id": "diagnose"}],
            terminate=[],
        )
        settled(operation)
        # Two tokens now: the re-run diagnose (then a second repair) and the waiting repair.
        gateway.complete(gateway.activate_all("p2-rerun-diagnose", 1)[0].key)
        for job in gateway.activate_all("p2-rerun-repair", 2):
            assert job.processInstanceKey == instance_key
            gateway.complete(job.key)
    finally:
        gateway.close()
    completed(instance_key)
    assert element_events(stack, instance_key, "ELEMENT_ACTIVATED", "diagnose") == 2
    assert element_events(stack, instance_key, "ELEMENT_COMPLETED", "repair") == 2


def test_a_plan_the_engine_refuses_shows_zeebes_reason_and_changes_nothing(stack: Stack) -> None:
    """The plan was valid when requested; before it runs the stuck step's worker comes back and
    completes it. The engine refuses the whole plan (its terminate target is gone): the operation
    fails with Zeebe's reason, nothing of the plan is applied, the flow went on once."""
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    assert stack.worker is not None
    stack.worker.stop()  # hold the operation until the step has ended
    try:
        instance_key = gateway.create("p2-refuse", {"serverSn": "SN-REFUSE"})
        stuck = imported(ElementInstance, process_instance_id=instance_key, element_id="diagnose")
        operation = services.operation_modify(
            actor=operator,
            process_instance=ProcessInstance.objects.get(key=instance_key),
            activate=[{"element_id": "repair"}],
            terminate=[stuck.key],
        )
        gateway.complete(gateway.activate_all("p2-refuse-diagnose", 1)[0].key)
        imported(ElementInstance, process_instance_id=instance_key, element_id="repair", state="active")
        stack.start_worker()
        operation = settled(operation, states=("failed", "confirmed", "succeeded"))
        assert operation.state == "failed", (operation.state, operation.result)
        assert operation.error_code == "INVALID_ARGUMENT"
        assert "terminate instructions with an element instance that could not be found" in operation.error
        gateway.complete(gateway.activate_all("p2-refuse-repair", 1)[0].key)
    finally:
        gateway.close()
    completed(instance_key)
    assert element_events(stack, instance_key, "ELEMENT_ACTIVATED", "repair") == 1
    records = stack.records(cluster_of(instance_key))
    assert (
        count_records(
            records, "PROCESS_INSTANCE_MODIFICATION", "MODIFIED", processInstanceKey=local(instance_key)
        )
        == 0
    )
    assert (
        count_records(
            records,
            "PROCESS_INSTANCE_MODIFICATION",
            "MODIFY",
            record_type="COMMAND_REJECTION",
        )
        >= 1
    )


# -- deploy and start through the proxy ------------------------------------------------------------


def test_deploy_from_the_console_and_start_instances_through_the_proxy(stack: Stack, settings: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from processes.operations.models import AuditEntry

    assert stack.proxy is not None
    settings.FLEETFLOW_GATEWAY_PROXY_ADDRESS = stack.proxy.address
    client = Client()
    client.force_login(f.user("otto", Role.OPERATOR))
    viewer = Client()
    viewer.force_login(f.user("vera", Role.VIEWER))
    assert viewer.get("/deploy/").status_code == 403

    # A service task without a task definition: the engine refuses and names the element.
    broken = linear_process("p2-deployed", "inspect").replace(
        b'<bpmn:extensionElements><zeebe:taskDefinition type="p2-deployed-inspect" retries="3"/>'
        b"</bpmn:extensionElements>",
        b"",
    )
    refused = client.post(
        "/deploy/", {"what": "deploy", "resource": SimpleUploadedFile("p2-deployed.bpmn", broken)}
    )
    assert refused.status_code == 422
    text = refused.content.decode()
    assert "INVALID_ARGUMENT" in text and "inspect" in text, text[text.find("data-deploy-error") :][:600]
    for cluster_id in (1, 2):
        assert (
            count_records(stack.records(cluster_id), "PROCESS", "CREATED", bpmnProcessId="p2-deployed") == 0
        )

    good = linear_process("p2-deployed", "inspect")
    deployed = client.post(
        "/deploy/", {"what": "deploy", "resource": SimpleUploadedFile("p2-deployed.bpmn", good)}
    )
    assert deployed.status_code == 200 and "p2-deployed version 1" in deployed.content.decode()
    for cluster_id in (1, 2):  # fanned out to every cluster (and there to each of its 2 partitions)
        assert (
            count_records(stack.records(cluster_id), "PROCESS", "CREATED", bpmnProcessId="p2-deployed") == 2
        )

    # Start through the console, then through the API: the proxy places them.
    started = client.post(
        "/deploy/",
        {
            "what": "start",
            "bpmn_process_id": "p2-deployed",
            "version": "-1",
            "variables": '{"serverSn": "SN-C"}',
        },
    )
    assert started.status_code == 200 and "Started" in started.content.decode()
    clusters = set()
    for n in range(6):
        response = client.post(
            "/api/v1/process-instances/start/",
            {"bpmn_process_id": "p2-deployed", "variables": {"serverSn": f"SN-{n}"}},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["version"] == 1 and cluster_of(int(body["process_instance_key"])) == body["cluster_id"]
        clusters.add(body["cluster_id"])
    assert clusters == {1, 2}, clusters  # placement spreads new instances over both clusters
    last = int(body["process_instance_key"])
    imported(ProcessInstance, key=last)
    missing = client.post(
        "/api/v1/process-instances/start/", {"bpmn_process_id": "p2-nope"}, content_type="application/json"
    )
    assert missing.status_code == 400 and "NOT_FOUND" in json.dumps(missing.json())
    events = list(
        AuditEntry.objects.filter(
            operation__isnull=True, event__in=["deployed", "deploy_refused", "started"]
        ).values_list("event", flat=True)
    )
    assert (
        events.count("deploy_refused") == 1 and events.count("deployed") == 1 and events.count("started") == 7
    )


def test_batch_move_of_every_matching_instance(stack: Stack) -> None:
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    count = 6
    try:
        instances = [gateway.create("p2-batch", {"serverSn": f"SN-B{n}"}) for n in range(count)]
        for key in instances:
            imported(ElementInstance, process_instance_id=key, element_id="diagnose", state="active")
        wait_for(
            lambda: (
                ProcessInstance.objects.filter(key__in=instances, process_definition__isnull=False).count()
                == count
            ),
            60,
            what="the instances and their definition imported",
        )
        move = {"source_element_id": "diagnose", "target_element_id": "repair"}
        selection = {"bpmn_process_id": "p2-batch"}
        # Refused up front with Zeebe's reason when the target cannot be activated: nothing written.
        with pytest.raises(services.OperationRejected, match="type 'START_EVENT' is not supported") as info:
            services.batch_operation_start(
                actor=operator,
                action="modify",
                filter=selection,
                parameters={"source_element_id": "diagnose", "target_element_id": "start"},
            )
        assert info.value.field == "parameters.target_element_id" and not Operation.objects.exists()
        assert (
            services.batch_operation_dry_run(
                actor=operator, action="modify", filter=selection, parameters=move
            )
            == count
        )
        assert (
            services.batch_operation_dry_run(
                actor=operator,
                action="modify",
                filter=selection,
                parameters={"source_element_id": "repair", "target_element_id": "diagnose"},
            )
            == 0
        )
        batch = services.batch_operation_start(
            actor=operator, action="modify", filter=selection, parameters=move
        )
        wait_for(
            lambda: Operation.objects.filter(batch=batch, state="confirmed").count() == count,
            90,
            what="every move confirmed",
        )
        for job in gateway.activate_all("p2-batch-repair", count):
            gateway.complete(job.key)
    finally:
        gateway.close()
    for key in instances:
        completed(key)
        assert element_events(stack, key, "ELEMENT_TERMINATED", "diagnose") == 1
        assert element_events(stack, key, "ELEMENT_ACTIVATED", "repair") == 1
    wait_for(
        lambda: type(batch).objects.filter(pk=batch.pk, state="completed").exists(),
        60,
        what="the batch completed",
    )
