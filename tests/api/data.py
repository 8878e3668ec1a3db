"""Build query-model rows for API tests directly (the importer's own tests cover how they are derived).

Keys are real global keys (DESIGN §2) so the API's key validation sees what production sees.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from processes import services
from processes.choices import IncidentState, InstanceState, JobState
from processes.models import (
    Cluster,
    ElementInstance,
    Incident,
    Job,
    ProcessDefinition,
    ProcessInstance,
    Variable,
)
from routing.keys import to_global
from servers.models import Server
from tests.support.bpmn import flow, process_xml, service_task

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
_counter = itertools.count(1)


def next_key(cluster_id: int = 1, partition_id: int = 1) -> int:
    return to_global(cluster_id, (partition_id << 51) + next(_counter))


def cluster(cluster_id: int = 1, **kwargs: Any) -> Cluster:
    existing = Cluster.objects.filter(pk=cluster_id).first()
    if existing is not None:
        return existing
    defaults = {"name": f"c{cluster_id}", "gateway_address": f"127.0.0.1:{26500 + cluster_id}"}
    defaults.update(kwargs)
    return services.cluster_create(cluster_id=cluster_id, **defaults)


def server(serial_number: str = "SN-1") -> Server:
    return Server.objects.get_or_create(
        serial_number=serial_number, defaults={"hostname": serial_number.lower()}
    )[0]


# start -> service task "task" -> end, as the engine would have stored it.
LINEAR_BPMN = process_xml(
    "provision",
    '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
    + service_task("task", "provision", "f1", "f2")
    + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
    + flow("f1", "start", "task")
    + flow("f2", "task", "end"),
).decode()


def definition(
    *, cluster_id: int = 1, bpmn_process_id: str = "provision", version: int = 1, bpmn_xml: str = LINEAR_BPMN
) -> ProcessDefinition:
    cluster(cluster_id)
    return ProcessDefinition.objects.create(
        key=next_key(cluster_id),
        cluster_id=cluster_id,
        bpmn_process_id=bpmn_process_id,
        version=version,
        resource_name=f"{bpmn_process_id}.bpmn",
        bpmn_xml=bpmn_xml,
    )


def instance(
    *,
    cluster_id: int = 1,
    parent: ProcessInstance | None = None,
    bpmn_process_id: str = "provision",
    version: int = 1,
    state: str = InstanceState.ACTIVE,
    minutes: int = 0,
    server_serial: str | None = None,
    incident: bool = False,
) -> ProcessInstance:
    cluster(cluster_id)
    key = next_key(cluster_id)
    if server_serial is None and parent is not None:
        server_serial = parent.server_id
    if server_serial is not None:
        server(server_serial)
    row = ProcessInstance.objects.create(
        key=key,
        cluster_id=cluster_id,
        partition_id=1,
        bpmn_process_id=bpmn_process_id,
        version=version,
        state=state,
        start_date=BASE_TIME + timedelta(minutes=minutes),
        end_date=None if state == InstanceState.ACTIVE else BASE_TIME + timedelta(minutes=minutes + 1),
        parent=parent,
        root_id=parent.root_id if parent is not None else key,
        depth=parent.depth + 1 if parent is not None else 0,
        tree_path=(parent.tree_path if parent is not None else "") + f"{key}/",
        server_id=server_serial,
        incident=incident,
        subtree_incident=incident,
    )
    return row


def element(
    process_instance: ProcessInstance,
    *,
    element_id: str = "task",
    minutes: int = 0,
    state: str = InstanceState.ACTIVE,
    element_type: str = "SERVICE_TASK",
    definition_key: int | None = None,
) -> ElementInstance:
    return ElementInstance.objects.create(
        key=next_key(process_instance.cluster_id),
        cluster_id=process_instance.cluster_id,
        partition_id=1,
        process_instance=process_instance,
        process_definition_key=definition_key,
        bpmn_process_id=process_instance.bpmn_process_id,
        flow_scope_key=process_instance.key,
        element_id=element_id,
        element_type=element_type,
        state=state,
        start_date=BASE_TIME + timedelta(minutes=minutes),
    )


def job(element_instance: ElementInstance, *, state: str = JobState.CREATED, retries: int = 3) -> Job:
    return Job.objects.create(
        key=next_key(element_instance.cluster_id),
        cluster_id=element_instance.cluster_id,
        partition_id=1,
        process_instance_id=element_instance.process_instance_id,
        element_instance=element_instance,
        bpmn_process_id=element_instance.bpmn_process_id,
        element_id=element_instance.element_id,
        job_type="provision-task",
        retries=retries,
        state=state,
        created_at=element_instance.start_date,
    )


def incident_on(
    element_instance: ElementInstance,
    *,
    error_type: str = "JOB_NO_RETRIES",
    error_message: str = "boom",
    state: str = IncidentState.ACTIVE,
    job_row: Job | None = None,
) -> Incident:
    owner = ProcessInstance.objects.get(pk=element_instance.process_instance_id)
    if state == IncidentState.ACTIVE:
        ProcessInstance.objects.filter(pk=owner.pk).update(incident=True)
        keys = [int(part) for part in owner.tree_path.split("/") if part]
        ProcessInstance.objects.filter(pk__in=keys).update(subtree_incident=True)
    return Incident.objects.create(
        key=next_key(element_instance.cluster_id),
        cluster_id=element_instance.cluster_id,
        partition_id=1,
        process_instance_id=owner.pk,
        element_instance=element_instance,
        job=job_row,
        bpmn_process_id=owner.bpmn_process_id,
        element_id=element_instance.element_id,
        variable_scope_key=element_instance.key,
        error_type=error_type,
        error_message=error_message,
        state=state,
        created_at=element_instance.start_date,
        root_key=owner.root_id,
        tree_path=owner.tree_path,
    )


def variable(
    process_instance: ProcessInstance, name: str, value: Any, *, scope_key: int | None = None
) -> Variable:
    return Variable.objects.create(
        key=next_key(process_instance.cluster_id),
        cluster_id=process_instance.cluster_id,
        partition_id=1,
        name=name,
        scope_key=scope_key or process_instance.key,
        process_instance=process_instance,
        bpmn_process_id=process_instance.bpmn_process_id,
        value=value,
        size=len(str(value)),
    )
