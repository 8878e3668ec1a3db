"""Process instance migration without a cluster (issue 19): what Zeebe refuses is refused before
sending, with Zeebe's reason and nothing written; a valid plan is queued once and confirmed from the
imported rows; the batch dry run lists what would be migrated and what refused, and why; the API's
preview, 202 and roles. tests/operations/test_part2_migrate_end_to_end.py runs plans on engines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from processes.operations import confirm, services
from processes.operations.choices import OperationState
from processes.operations.executor import OperationSnapshot, _run_migrate
from processes.operations.migrate import auto_mapping, read_migration_diagram
from processes.operations.models import AuditEntry, BatchOperation, Operation
from processes.operations.services import OperationRejected
from processes.roles import Role, RoleRequired
from tests.operations import factories as f

pytestmark = pytest.mark.django_db

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="linear" isExecutable="true">"""
TAIL = "</bpmn:process></bpmn:definitions>"

V1 = (
    HEAD
    + """
    <bpmn:startEvent id="start"/>
    <bpmn:serviceTask id="diagnose"/>
    <bpmn:serviceTask id="repair"/>
    <bpmn:userTask id="approve"/>
    <bpmn:serviceTask id="guarded"/>
    <bpmn:boundaryEvent id="too-long" attachedToRef="guarded"><bpmn:timerEventDefinition/></bpmn:boundaryEvent>
    <bpmn:subProcess id="each"><bpmn:multiInstanceLoopCharacteristics/>
      <bpmn:serviceTask id="per-disk"/></bpmn:subProcess>
    <bpmn:endEvent id="end"/>"""
    + TAIL
)
# Version 2: 'repair' became a user task, 'approve' a Zeebe user task, 'diagnose' stays, 'check'
# is new, 'inner' lives in a subprocess, 'watched' has a boundary event.
V2 = (
    HEAD
    + """
    <bpmn:startEvent id="start"/>
    <bpmn:serviceTask id="diagnose"/>
    <bpmn:serviceTask id="check"/>
    <bpmn:userTask id="repair"/>
    <bpmn:userTask id="approve"><bpmn:extensionElements><zeebe:userTask/></bpmn:extensionElements></bpmn:userTask>
    <bpmn:serviceTask id="watched"/>
    <bpmn:boundaryEvent id="late" attachedToRef="watched"><bpmn:timerEventDefinition/></bpmn:boundaryEvent>
    <bpmn:subProcess id="sub"><bpmn:serviceTask id="inner"/></bpmn:subProcess>
    <bpmn:endEvent id="end"/>"""
    + TAIL
)
WITH_EVENT_SUBPROCESS = (
    HEAD
    + """
    <bpmn:serviceTask id="diagnose"/>
    <bpmn:subProcess id="on-cancel" triggeredByEvent="true"><bpmn:startEvent id="es"/></bpmn:subProcess>"""
    + TAIL
)


def definition(version: int, xml: str, cluster_id: int = 1) -> Any:
    created = f.definition(cluster_id, bpmn_xml=xml)
    created.version = version
    created.save()
    return created


@pytest.fixture
def world() -> dict[str, Any]:
    v1 = definition(1, V1)
    v2 = definition(2, V2)
    root = f.instance(process_definition=v1)
    step = f.element(root, "diagnose")
    return {"v1": v1, "v2": v2, "root": root, "step": step, "operator": f.user("otto", Role.OPERATOR)}


def nothing_written() -> bool:
    return not Operation.objects.exists() and not AuditEntry.objects.filter(operation__isnull=False).exists()


def refused(world: dict[str, Any], message: str, field: str = "mapping", **arguments: Any) -> None:
    arguments.setdefault("target_version", 2)
    with pytest.raises(OperationRejected) as info:
        services.operation_migrate(actor=world["operator"], process_instance=world["root"], **arguments)
    assert message in info.value.message, info.value.message
    assert info.value.field == field, info.value.field
    assert nothing_written()


def prefix(world: dict[str, Any]) -> str:
    return f"Expected to migrate process instance '{world['root'].key}' but"


def test_elements_are_auto_matched_by_id_and_type():
    source = read_migration_diagram(V1, process_id="linear")
    target = read_migration_diagram(V2, process_id="linear")
    # 'repair' changed type and 'approve' kind of user task is checked separately: same BPMN type.
    assert auto_mapping(source, target) == {
        "start": "start",
        "diagnose": "diagnose",
        "approve": "approve",
        "end": "end",
    }
    assert source.boundary_events == {"guarded": ("too-long",)}
    assert target.zeebe_user_tasks == {"approve"}
    assert target.flow_scope_id("inner") == "sub" and target.flow_scope_id("check") == "linear"


def test_a_valid_plan_is_queued_once_and_confirmed_from_the_rows(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        operation = services.operation_migrate(
            actor=world["operator"], process_instance=world["root"], target_version=2
        )
    assert len(callbacks) == 1
    assert operation.action == "migrate" and operation.state == OperationState.QUEUED
    with pytest.raises(OperationRejected) as twice:  # a double click while it is under way
        services.operation_migrate(actor=world["operator"], process_instance=world["root"], target_version=2)
    assert f"already being migrated (operation {operation.id})" in twice.value.message
    assert Operation.objects.count() == 1
    assert operation.parameters["target_process_definition_key"] == world["v2"].key
    assert ["diagnose", "diagnose"] in operation.parameters["mapping"]
    assert operation.parameters["plan"] == [
        f"The token at 'diagnose' (SERVICE_TASK, {world['step'].key}) stays, keeping its job."
    ]
    assert AuditEntry.objects.get(operation=operation).event == "requested"
    Operation.objects.update(state=OperationState.SUCCEEDED)
    rows = [{"key": world["root"].key, "state": "active"}]
    assert confirm.confirm_imported(instances=rows) == 0  # still on version 1
    world["root"].process_definition = world["v2"]
    world["root"].version = 2
    world["root"].save()
    assert confirm.confirm_imported(instances=rows) == 1
    assert Operation.objects.get().state == OperationState.CONFIRMED


def test_an_explicit_mapping_moves_a_token_to_another_element(world):
    operation = services.operation_migrate(
        actor=world["operator"],
        process_instance=world["root"],
        target_version=2,
        mapping=[{"source_element_id": "diagnose", "target_element_id": "check"}],
    )
    assert operation.parameters["mapping"] == [["diagnose", "check"]]
    assert "moves to 'check'" in operation.parameters["plan"][0]


def test_zeebes_refusals_before_sending(world):
    p = prefix(world)
    refused(
        world,
        f"{p} no mapping instruction defined for active element with id 'diagnose'. "
        "Elements cannot be migrated without a mapping.",
        mapping=[{"source_element_id": "repair", "target_element_id": "check"}],
    )
    refused(
        world,
        f"{p} active element with id 'diagnose' and type 'SERVICE_TASK' is mapped to an element with id "
        "'repair' and different type 'USER_TASK'. Elements must be mapped to elements of the same type.",
        mapping={"diagnose": "repair"},
    )
    refused(
        world,
        f"{p} mapping instructions contain a non-existing target element id 'nope'.",
        mapping={"diagnose": "nope"},
    )
    refused(
        world,
        f"{p} mapping instructions contain a non-existing source element id 'ghost'.",
        mapping={"ghost": "diagnose"},
    )
    refused(
        world,
        f"{p} the mapping instructions contain duplicate source element ids '[diagnose]'.",
        mapping=[
            {"source_element_id": "diagnose", "target_element_id": "diagnose"},
            {"source_element_id": "diagnose", "target_element_id": "check"},
        ],
    )
    refused(
        world,
        f"{p} the flow scope of active element with id 'diagnose' is changed. The flow scope of the active "
        "element is expected to be 'linear' but was 'sub'.",
        mapping={"diagnose": "inner"},
    )
    refused(
        world,
        f"{p} target element with id 'diagnose' has a boundary event. Migrating target elements with "
        "boundary events is not possible yet.",
        mapping={"diagnose": "watched"},
    )
    refused(world, "already on linear version 1", field="target_version", target_version=1)
    refused(
        world, "Version 7 of linear is not deployed on cluster 1", field="target_version", target_version=7
    )
    refused(world, "Give target_version", field="target_version", target_version=None)
    refused(world, "must be a list", field="mapping_instructions", mapping="diagnose")
    refused(
        world, "Unknown field(s)", field="mapping_instructions", mapping=[{"source_element_id": "a", "x": 1}]
    )
    refused(world, "At most 500", field="mapping_instructions", mapping=[{"source_element_id": "a"}] * 501)


def test_refusals_that_depend_on_the_active_elements(world):
    p = prefix(world)
    world["step"].delete()
    multi = f.element(world["root"], "each", element_type="MULTI_INSTANCE_BODY")
    refused(
        world,
        f"{p} active element with id 'each' has an unsupported type. The migration of a MULTI_INSTANCE_BODY "
        "is not supported.",
    )
    multi.delete()
    f.element(world["root"], "guarded")
    refused(
        world,
        f"{p} active element with id 'guarded' has a boundary event. Migrating active elements with boundary "
        "events is not possible yet.",
        mapping={"guarded": "diagnose"},
    )
    ElementInstance = type(world["step"])
    ElementInstance.objects.all().delete()
    approve = f.element(world["root"], "approve", element_type="USER_TASK")
    refused(
        world,
        f"{p} active element with id 'approve' and type 'USER_TASK' is mapped to an element with id 'approve' "
        "and different type 'ZEEBE_USER_TASK'.",
    )
    approve.delete()
    f.incident(f.element(world["root"], "diagnose"))
    refused(world, f"{p} active element with id 'diagnose' has an incident.")


def test_child_instances_event_subprocesses_ended_instances_roles_and_hostile_xml(world):
    child = f.instance(parent=world["root"], process_definition=world["v1"])
    with pytest.raises(OperationRejected) as info:
        services.operation_migrate(actor=world["operator"], process_instance=child, target_version=2)
    assert info.value.message == (
        f"Expected to migrate process instance '{child.key}' but process instance is a child process instance. "
        "Child process instances cannot be migrated."
    )
    definition(3, WITH_EVENT_SUBPROCESS)
    refused(
        world,
        "Expected to migrate process instance but target process has an event subprocess.",
        field="target",
        target_version=3,
    )
    for actor in (AnonymousUser(), f.user("vera", Role.VIEWER)):
        with pytest.raises(RoleRequired):
            services.operation_migrate(actor=actor, process_instance=world["root"], target_version=2)
    definition(4, '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>')
    refused(world, "linear version 4:", field="target_version", target_version=4)
    # A definition key of another cluster's copy names the wrong cluster.
    other = definition(2, V2, cluster_id=2)
    refused(
        world,
        "is cluster 2's copy",
        field="target_process_definition_key",
        target_version=None,
        target_process_definition_key=other.key,
    )
    world["root"].state = "completed"
    world["root"].save()
    refused(world, "has already ended", field="process_instance")


def test_the_executor_treats_a_rerun_that_finds_the_old_ids_gone_as_done():
    """A first attempt's INVALID_ARGUMENT is Zeebe's refusal; on a re-run after a lost outcome, the
    same answer means the first call migrated the instance already."""
    import grpc

    from routing.client import GatewayError

    class Refusing:
        def call(self, method: str, request: Any) -> None:
            assert method == "MigrateProcessInstance"
            assert request.migrationPlan.mappingInstructions[0].targetElementId == "check"
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Command 'MIGRATE' rejected with code 'INVALID_ARGUMENT': Expected to migrate process instance "
                "'1' but mapping instructions contain a non-existing source element id 'diagnose'.",
                cluster_id=1,
            )

    snapshot = OperationSnapshot(
        id=1,
        action="migrate",
        target_key=f.key(),
        cluster_id=1,
        parameters={"target_process_definition_key": f.key(), "mapping": [["diagnose", "check"]]},
        attempts=1,
    )
    from processes.operations.executor import GatewayError as ExecutorGatewayError

    assert ExecutorGatewayError is GatewayError
    with pytest.raises(GatewayError):
        _run_migrate(Refusing(), snapshot)  # type: ignore[arg-type]
    from processes.operations.executor import execute

    outcome = execute(Refusing(), snapshot, max_backoff=1)  # type: ignore[arg-type]
    assert outcome.state == OperationState.FAILED and outcome.error_code == "INVALID_ARGUMENT"
    again = execute(Refusing(), OperationSnapshot(**{**snapshot.__dict__, "attempts": 2}), max_backoff=1)  # type: ignore[arg-type]
    assert again.state == OperationState.SUCCEEDED and again.already_done


# -- batches ------------------------------------------------------------------------------------------


@pytest.fixture
def many(world: dict[str, Any]) -> dict[str, Any]:
    """Four more version-1 instances: two migratable, one with an incident, one child."""
    fine = [world["root"]]
    for _ in range(2):
        instance = f.instance(process_definition=world["v1"])
        f.element(instance, "diagnose")
        fine.append(instance)
    stuck = f.instance(process_definition=world["v1"])
    f.incident(f.element(stuck, "diagnose"))
    child = f.instance(parent=world["root"], process_definition=world["v1"])
    f.element(child, "repair")
    return {**world, "fine": fine, "stuck": stuck, "child": child}


SELECTION = {"bpmn_process_id": "linear", "version": "1"}


def test_batch_dry_run_lists_what_would_be_migrated_and_refused(many):
    report = services.batch_migrate_dry_run(
        actor=many["operator"], filter=SELECTION, parameters={"target_version": 2}
    )
    assert report.count == report.examined == 5
    assert report.migrate_count == 3 and report.refuse_count == 2
    assert sorted(item["key"] for item in report.migrate) == sorted(i.key for i in many["fine"])
    reasons = {item["key"]: item["reason"] for item in report.refuse}
    assert "has an incident" in reasons[many["stuck"].key]
    assert "child process instance" in reasons[many["child"].key]
    assert sorted(report.reasons.values()) == [1, 1]
    assert nothing_written() and not BatchOperation.objects.exists()
    with pytest.raises(OperationRejected) as info:
        services.batch_migrate_dry_run(
            actor=many["operator"], filter={"bpmn_process_id": "linear"}, parameters={"target_version": 2}
        )
    assert info.value.field == "filter"
    with pytest.raises(OperationRejected) as info:
        services.batch_migrate_dry_run(
            actor=many["operator"], filter=SELECTION, parameters={"target_version": 2, "x": 1}
        )
    assert info.value.field == "parameters"
    with pytest.raises(RoleRequired):
        services.batch_migrate_dry_run(
            actor=f.user("vera", Role.VIEWER), filter=SELECTION, parameters={"target_version": 2}
        )


def test_batch_planning_queues_the_accepted_and_fails_the_refused_with_the_reason(
    many, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        batch = services.batch_operation_start(
            actor=many["operator"], action="migrate", filter=SELECTION, parameters={"target_version": 2}
        )
    assert batch.dry_run_count == 5
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        step = services.batch_plan_step(batch_id=batch.id)
    assert step.planned == 3 and step.done
    batch.refresh_from_db()
    assert batch.total == 5
    queued = Operation.objects.filter(batch=batch, state="queued")
    assert sorted(queued.values_list("target_key", flat=True)) == sorted(i.key for i in many["fine"])
    failed = {op.target_key: op for op in Operation.objects.filter(batch=batch, state="failed")}
    assert set(failed) == {many["stuck"].key, many["child"].key}
    assert failed[many["stuck"].key].error_code == services.REFUSED_BEFORE_SENDING
    assert "has an incident" in failed[many["stuck"].key].error
    assert AuditEntry.objects.filter(batch=batch, event="failed").count() == 2
    assert len(callbacks) == 1  # one task message for the three queued operations
    # Planning again plans nothing twice.
    assert services.batch_plan_step(batch_id=batch.id).planned == 0
    assert Operation.objects.filter(batch=batch).count() == 5


# -- API ----------------------------------------------------------------------------------------------


def logged_in(role: Role) -> Client:
    client = Client()
    client.force_login(f.user(f"u-{role}", role))
    return client


def test_api_preview_apply_refusal_and_roles(world):
    url = f"/api/v1/process-instances/{world['root'].key}/migrate/"
    plan = {"target_version": 2}
    assert Client().post(url, plan, content_type="application/json").status_code in (401, 403)
    assert logged_in(Role.VIEWER).post(url, plan, content_type="application/json").status_code == 403
    client = logged_in(Role.OPERATOR)
    preview = client.post(url, {**plan, "preview": True}, content_type="application/json")
    assert preview.status_code == 200, preview.content
    body = preview.json()
    assert body["target_version"] == 2 and body["target_process_definition_key"] == str(world["v2"].key)
    assert {"source_element_id": "diagnose", "target_element_id": "diagnose"} in body["mapping_instructions"]
    assert nothing_written()
    bad = client.post(
        url,
        {**plan, "mapping_instructions": [{"source_element_id": "diagnose", "target_element_id": "repair"}]},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "mapped to an element with id 'repair' and different type 'USER_TASK'" in json.dumps(bad.json())
    assert nothing_written()
    both = client.post(
        url,
        {"target_version": 2, "target_process_definition_key": str(world["v2"].key)},
        content_type="application/json",
    )
    assert both.status_code == 400 and "target_version" in json.dumps(both.json())
    applied = logged_in(Role.ADMIN).post(url, plan, content_type="application/json")
    assert applied.status_code == 202, applied.content
    operation = Operation.objects.get()
    assert operation.action == "migrate" and operation.parameters["target_version"] == 2


def test_api_batch_migrate_dry_run_and_start(many):
    client = logged_in(Role.OPERATOR)
    body = {"action": "migrate", "filter": SELECTION, "parameters": {"target_version": 2}, "dry_run": True}
    assert (
        logged_in(Role.VIEWER)
        .post("/api/v1/batch-operations/", body, content_type="application/json")
        .status_code
        == 403
    )
    dry = client.post("/api/v1/batch-operations/", body, content_type="application/json")
    assert dry.status_code == 200, dry.content
    report = dry.json()
    assert report["count"] == 5 and report["migrate_count"] == 3 and report["refuse_count"] == 2
    assert all(isinstance(item["key"], str) for item in report["refuse"])
    assert not BatchOperation.objects.exists()
    started = client.post(
        "/api/v1/batch-operations/", {**body, "dry_run": False}, content_type="application/json"
    )
    assert started.status_code == 202, started.content
    assert BatchOperation.objects.get().action == "migrate"


def test_batch_dry_run_queries_do_not_grow_with_the_instances(world, django_assert_max_num_queries):
    """Per page of 500: the instances, their active elements, their incidents; per distinct
    definition one more. 3 or 60 instances cost the same."""

    def add(count: int) -> None:
        for _ in range(count):
            f.element(f.instance(process_definition=world["v1"]), "diagnose")

    def dry_run() -> Any:
        return services.batch_migrate_dry_run(
            actor=world["operator"], filter=SELECTION, parameters={"target_version": 2}
        )

    add(2)
    with django_assert_max_num_queries(12) as small:
        assert dry_run().migrate_count == 3
    add(57)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert dry_run().migrate_count == 60
