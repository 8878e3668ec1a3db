"""One small world with a row behind every endpoint, for the permission matrix and query counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

from processes import services
from processes.choices import ClusterState, InstanceState, JobState
from processes.models import ElementInstance, Incident, Job, ProcessDefinition, ProcessInstance
from processes.operations import services as operations
from processes.operations.models import BatchOperation, Operation
from processes.roles import Role, assign_role
from tests.api import data


@dataclass
class World:
    definition: ProcessDefinition
    root: ProcessInstance
    child: ProcessInstance
    step: ElementInstance
    manual_step: ElementInstance
    job: Job
    incident: Incident
    operation: Operation
    batch: BatchOperation
    extra: dict[str, Any] = field(default_factory=dict)


def build_world(*, fan_out: int = 0) -> World:
    data.cluster(1)
    data.cluster(2)
    services.cluster_create(
        cluster_id=3, name="c3", gateway_address="127.0.0.1:26503", state=ClusterState.DISABLED
    )
    definition = data.definition(bpmn_process_id="provision")
    root = data.instance(bpmn_process_id="provision", minutes=0, server_serial="SN-1")
    ProcessInstance.objects.filter(pk=root.pk).update(process_definition=definition)
    child = data.instance(parent=root, bpmn_process_id="firmware", minutes=1)
    step = data.element(root, element_id="task", definition_key=definition.key, minutes=1)
    manual_step = data.element(child, element_id="manual", element_type="USER_TASK", minutes=2)
    job = data.job(step, state=JobState.FAILED, retries=0)
    data.job(manual_step, state=JobState.ACTIVATED)
    incident = data.incident_on(step, job_row=job, error_message="flash failed")
    data.variable(root, "serverSn", "SN-1")
    # Rows enough for several pages of every list (query counts must not grow with the page).
    for index in range(fan_out):
        other = data.instance(
            bpmn_process_id="bulk", minutes=10 + index, server_serial="SN-1", state=InstanceState.ACTIVE
        )
        data.instance(parent=root, bpmn_process_id="bulk-child", minutes=10 + index)
        element = data.element(root, element_id=f"bulk-{index}", minutes=10 + index)
        bulk_job = data.job(element)
        data.incident_on(element, job_row=bulk_job, error_message=f"bulk failure {index % 3}")
        data.variable(root, f"bulk_{index}", index)
        data.server(f"SN-BULK-{index}")
        data.definition(bpmn_process_id=f"bulk-{index}")
        data.element(other, element_id="bulk-step", minutes=10 + index)
    actor = get_user_model().objects.create(username="fixture-operator")
    assign_role(user=actor, role=Role.OPERATOR)
    operation = operations.operation_cancel(actor=actor, process_instance=root)
    for _ in range(fan_out):
        operations.operation_set_variables(actor=actor, scope_key=root.key, variables={"bulk": True})
    batch = operations.batch_operation_start(
        actor=actor, action="cancel", filter={"roots_only": True}, parameters={}
    )
    for _ in range(fan_out):
        operations.batch_operation_start(
            actor=actor, action="cancel", filter={"roots_only": True}, parameters={}
        )
    return World(definition, root, child, step, manual_step, job, incident, operation, batch)
