"""Migration end to end (issue 19, must show): two `python -m engine` clusters behind `python -m
routing`, a real Celery worker and `import_records --follow`. A batch migrates every running
instance of version 1 to version 2 and they finish on version 2; a plan the engine refuses fails
with Zeebe's reason and changes nothing. What happened is counted in the engines' own logs."""

from __future__ import annotations

import json

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb

from processes.models import ProcessDefinition, ProcessInstance
from processes.operations import services
from processes.operations.models import BatchOperation, Operation
from processes.roles import Role
from routing.keys import cluster_of
from tests.operations import factories as f
from tests.operations.stack import Gateway, Stack, count_records, linear_process
from tests.operations.test_end_to_end import local, settled
from tests.routing.harness import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

COUNT = 100


@pytest.fixture(scope="module", autouse=True)
def deployed(clusters: Stack) -> None:
    gateway = clusters.gateway()
    try:
        for process_id in ("p2-migrate", "p2-migrate-refused", "p2-migrate-proxy"):
            # Version 1: diagnose -> repair. Version 2 adds 'verify' between them.
            gateway.deploy(f"{process_id}.bpmn", linear_process(process_id, "diagnose", "repair"))
            gateway.deploy(f"{process_id}.bpmn", linear_process(process_id, "diagnose", "verify", "repair"))
    finally:
        gateway.close()


def create_version_1(gateway: Gateway, process_id: str, serial: str) -> int:
    response = gateway.stub.CreateProcessInstance(
        pb.CreateProcessInstanceRequest(
            bpmnProcessId=process_id, version=1, variables=json.dumps({"serverSn": serial})
        ),
        timeout=10,
    )
    return int(response.processInstanceKey)


def imported_waiting(process_id: str, keys: list[int]) -> None:
    wait_for(
        lambda: (
            ProcessDefinition.objects.filter(bpmn_process_id=process_id).count() == 4
            and ProcessInstance.objects.filter(key__in=keys, version=1, state="active").count() == len(keys)
            and ProcessInstance.objects.filter(
                key__in=keys, element_instances__element_id="diagnose", element_instances__state="active"
            ).count()
            == len(keys)
        ),
        90,
        what=f"{len(keys)} {process_id} instances waiting at diagnose, both versions imported",
    )


def finish(gateway: Gateway, job_type: str, count: int) -> list[pb.ActivatedJob]:
    jobs = gateway.activate_all(job_type, count, deadline_s=120)
    for job in jobs:
        gateway.complete(job.key)
    return jobs


def test_batch_migrates_100_running_instances_and_they_finish_on_version_2(stack: Stack) -> None:
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    try:
        keys = [create_version_1(gateway, "p2-migrate", f"SN-MIG-{n}") for n in range(COUNT)]
        assert {cluster_of(key) for key in keys} == {1, 2}  # placed on both clusters
        # Each diagnose job is taken by a worker before the migration: it keeps its key.
        held = {job.processInstanceKey: job for job in gateway.activate_all("p2-migrate-diagnose", COUNT)}
        assert set(held) == set(keys) and all(job.processDefinitionKey for job in held.values())
        imported_waiting("p2-migrate", keys)
        selection = {"bpmn_process_id": "p2-migrate", "version": "1"}
        parameters = {"target_version": 2}
        report = services.batch_migrate_dry_run(actor=operator, filter=selection, parameters=parameters)
        assert (report.count, report.migrate_count, report.refuse_count) == (COUNT, COUNT, 0)
        assert not Operation.objects.exists()  # the dry run sent nothing
        batch = services.batch_operation_start(
            actor=operator, action="migrate", filter=selection, parameters=parameters
        )
        wait_for(
            lambda: Operation.objects.filter(batch=batch, state="confirmed").count() == COUNT,
            180,
            what="every migration confirmed",
        )
        wait_for(
            lambda: BatchOperation.objects.filter(pk=batch.pk, state="completed").exists(),
            60,
            what="the batch completed",
        )
        assert ProcessInstance.objects.filter(key__in=keys, version=2).count() == COUNT
        # The held jobs complete under their old keys; the flow goes on along version 2.
        for job in held.values():
            gateway.complete(job.key)
        verified = finish(gateway, "p2-migrate-verify", COUNT)
        assert {job.processInstanceKey for job in verified} == set(keys)
        assert all(job.processDefinitionVersion == 2 for job in verified)
        finish(gateway, "p2-migrate-repair", COUNT)
    finally:
        gateway.close()
    wait_for(
        lambda: ProcessInstance.objects.filter(key__in=keys, state="completed", version=2).count() == COUNT,
        120,
        what="all instances completed on version 2",
    )
    for cluster_id in (1, 2):
        records = stack.records(cluster_id)
        mine = [key for key in keys if cluster_of(key) == cluster_id]
        definition = ProcessDefinition.objects.get(
            cluster_id=cluster_id, bpmn_process_id="p2-migrate", version=2
        )
        assert count_records(records, "PROCESS_INSTANCE_MIGRATION", "MIGRATED") >= len(mine)
        for key in mine:
            # One migration per instance (no doubles), the process and its task migrated once each,
            # the job kept its key, and the instance ended on version 2.
            assert (
                count_records(
                    records, "PROCESS_INSTANCE_MIGRATION", "MIGRATED", processInstanceKey=local(key)
                )
                == 1
            )
            assert (
                count_records(records, "PROCESS_INSTANCE", "ELEMENT_MIGRATED", processInstanceKey=local(key))
                == 2
            )
            assert count_records(records, "JOB", "MIGRATED", key=local(held[key].key)) == 1
            assert count_records(records, "JOB", "COMPLETED", key=local(held[key].key)) == 1
            assert (
                count_records(
                    records,
                    "PROCESS_INSTANCE",
                    "ELEMENT_COMPLETED",
                    key=local(key),
                    version=2,
                    processDefinitionKey=local(definition.key),
                )
                == 1
            )


def test_a_plan_the_engine_refuses_shows_zeebes_reason_and_changes_nothing(stack: Stack) -> None:
    """Valid when requested (only 'diagnose' has a token and it is mapped); before it runs the
    step completes and the token waits at 'repair', which the plan does not map. The engine refuses
    the whole plan with its reason; the instance stays on version 1 and finishes there."""
    operator = f.user("otto", Role.OPERATOR)
    gateway = stack.gateway()
    assert stack.worker is not None
    stack.worker.stop()  # hold the operation until the step has moved on
    try:
        key = create_version_1(gateway, "p2-migrate-refused", "SN-MIG-REFUSED")
        imported_waiting("p2-migrate-refused", [key])
        operation = services.operation_migrate(
            actor=operator,
            process_instance=ProcessInstance.objects.get(key=key),
            target_version=2,
            mapping=[{"source_element_id": "diagnose", "target_element_id": "diagnose"}],
        )
        finish(gateway, "p2-migrate-refused-diagnose", 1)
        wait_for(
            lambda: ProcessInstance.objects.filter(
                key=key, element_instances__element_id="repair", element_instances__state="active"
            ).exists(),
            60,
            what="the token at repair",
        )
        stack.start_worker()
        operation = settled(operation, states=("failed", "confirmed", "succeeded"))
        assert operation.state == "failed", (operation.state, operation.result)
        assert operation.error_code == "FAILED_PRECONDITION"
        assert (
            f"Expected to migrate process instance '{local(key)}' but no mapping instruction defined for active "
            "element with id 'repair'. Elements cannot be migrated without a mapping." in operation.error
        )
        finish(gateway, "p2-migrate-refused-repair", 1)
    finally:
        gateway.close()
    wait_for(
        lambda: ProcessInstance.objects.filter(key=key, state="completed", version=1).exists(),
        60,
        what="the instance completed on version 1",
    )
    records = stack.records(cluster_of(key))
    assert count_records(records, "PROCESS_INSTANCE", "ELEMENT_MIGRATED", processInstanceKey=local(key)) == 0
    assert (
        count_records(
            records,
            "PROCESS_INSTANCE_MIGRATION",
            "MIGRATE",
            record_type="COMMAND_REJECTION",
            processInstanceKey=local(key),
        )
        == 1
    )


def test_a_client_migrates_through_the_proxy_with_global_keys(stack: Stack) -> None:
    """zbctl-style clients call MigrateProcessInstance on the proxy with global keys: routed by the
    instance key to its cluster; a target definition key of the other cluster is refused there."""
    gateway = stack.gateway()
    try:
        key = create_version_1(gateway, "p2-migrate-proxy", "SN-MIG-PROXY")
        imported_waiting("p2-migrate-proxy", [key])
        own, other = (
            ProcessDefinition.objects.get(
                cluster_id=cluster_id, bpmn_process_id="p2-migrate-proxy", version=2
            ).key
            for cluster_id in (cluster_of(key), 3 - cluster_of(key))
        )

        def migrate(target: int) -> None:
            request = pb.MigrateProcessInstanceRequest(processInstanceKey=key)
            request.migrationPlan.targetProcessDefinitionKey = target
            request.migrationPlan.mappingInstructions.add(
                sourceElementId="diagnose", targetElementId="diagnose"
            )
            gateway.stub.MigrateProcessInstance(request, timeout=10)

        with pytest.raises(grpc.RpcError) as info:
            migrate(other)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        migrate(own)
        finish(gateway, "p2-migrate-proxy-diagnose", 1)
        (verify,) = gateway.activate_all("p2-migrate-proxy-verify", 1)
        assert verify.processInstanceKey == key and verify.processDefinitionKey == own
        gateway.complete(verify.key)
        finish(gateway, "p2-migrate-proxy-repair", 1)
    finally:
        gateway.close()
    wait_for(
        lambda: ProcessInstance.objects.filter(key=key, state="completed", version=2).exists(),
        60,
        what="the instance completed on version 2",
    )
