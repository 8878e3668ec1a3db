"""Query-model rows for the operations tests that need no cluster (the end-to-end tests import
real records instead). Keys are global keys of partition 1 (DESIGN §2)."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth.models import User

from processes.models import Cluster, ElementInstance, Incident, Job, ProcessDefinition, ProcessInstance
from processes.roles import Role, assign_role

_counter = itertools.count(1)

LINEAR_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="linear" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="diagnose"/>
    <bpmn:serviceTask id="diagnose"><bpmn:extensionElements><zeebe:taskDefinition type="diagnose"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="diagnose" targetRef="repair"/>
    <bpmn:serviceTask id="repair"><bpmn:extensionElements><zeebe:taskDefinition type="repair"/></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f3" sourceRef="repair" targetRef="decide"/>
    <bpmn:exclusiveGateway id="decide"/>
    <bpmn:sequenceFlow id="f4" sourceRef="decide" targetRef="rack"><bpmn:conditionExpression>=ok</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f5" sourceRef="decide" targetRef="retire"/>
    <bpmn:serviceTask id="rack"/>
    <bpmn:sequenceFlow id="f6" sourceRef="rack" targetRef="join"/>
    <bpmn:serviceTask id="retire"/>
    <bpmn:sequenceFlow id="f7" sourceRef="retire" targetRef="join"/>
    <bpmn:parallelGateway id="join"/>
    <bpmn:sequenceFlow id="f8" sourceRef="join" targetRef="last"/>
    <bpmn:serviceTask id="last"><bpmn:multiInstanceLoopCharacteristics/></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f9" sourceRef="last" targetRef="cond"/>
    <bpmn:serviceTask id="cond"/>
    <bpmn:sequenceFlow id="f10" sourceRef="cond" targetRef="end"><bpmn:conditionExpression>=x</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:endEvent id="end"/>
    <bpmn:serviceTask id="dead-end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def key(cluster_id: int = 1, n: int | None = None) -> int:
    return (cluster_id << 58) | ((1 << 51) + (n if n is not None else next(_counter)))


def cluster(cluster_id: int = 1, **extra: Any) -> Cluster:
    cluster, _ = Cluster.objects.get_or_create(
        id=cluster_id,
        defaults={"name": f"c{cluster_id}", "gateway_address": f"127.0.0.1:{26500 + cluster_id}", **extra},
    )
    return cluster


def definition(cluster_id: int = 1, bpmn_xml: str = LINEAR_BPMN) -> ProcessDefinition:
    return ProcessDefinition.objects.create(
        key=key(cluster_id),
        cluster=cluster(cluster_id),
        bpmn_process_id="linear",
        version=1,
        bpmn_xml=bpmn_xml,
    )


def instance(cluster_id: int = 1, *, parent: ProcessInstance | None = None, **extra: Any) -> ProcessInstance:
    instance_key = key(cluster_id)
    root = parent.root if parent is not None and parent.root is not None else parent
    fields: dict[str, Any] = {
        "key": instance_key,
        "cluster": cluster(cluster_id),
        "partition_id": 1,
        "bpmn_process_id": "linear",
        "version": 1,
        "parent": parent,
        "root_id": root.key if root is not None else instance_key,
        "depth": parent.depth + 1 if parent is not None else 0,
        "tree_path": (parent.tree_path if parent is not None else "") + f"{instance_key}/",
    }
    fields.update(extra)
    return ProcessInstance.objects.create(**fields)


def element(process_instance: ProcessInstance, element_id: str = "diagnose", **extra: Any) -> ElementInstance:
    cluster_id = process_instance.cluster_id
    fields: dict[str, Any] = {
        "key": key(cluster_id),
        "cluster_id": cluster_id,
        "partition_id": 1,
        "process_instance": process_instance,
        "process_definition_key": process_instance.process_definition_id,
        "flow_scope_key": process_instance.key,
        "element_id": element_id,
        "element_type": "SERVICE_TASK",
    }
    fields.update(extra)
    return ElementInstance.objects.create(**fields)


def job(step: ElementInstance, **extra: Any) -> Job:
    fields: dict[str, Any] = {
        "key": key(step.cluster_id),
        "cluster_id": step.cluster_id,
        "partition_id": 1,
        "process_instance_id": step.process_instance_id,
        "element_instance": step,
        "element_id": step.element_id,
        "job_type": step.element_id,
        "retries": 3,
    }
    fields.update(extra)
    return Job.objects.create(**fields)


def incident(step: ElementInstance, *, with_job: bool = True, **extra: Any) -> Incident:
    fields: dict[str, Any] = {
        "key": key(step.cluster_id),
        "cluster_id": step.cluster_id,
        "partition_id": 1,
        "process_instance_id": step.process_instance_id,
        "element_instance": step,
        "job": job(step, retries=0, state="failed") if with_job else None,
        "element_id": step.element_id,
        "error_type": "JOB_NO_RETRIES" if with_job else "IO_MAPPING_ERROR",
        "error_message": "disk controller did not answer",
    }
    fields.update(extra)
    return Incident.objects.create(**fields)


def user(name: str, role: Role | None = None) -> User:
    created = User.objects.create_user(username=name, password="pw-" + name)
    if role is not None:
        assign_role(user=created, role=role)
    return User.objects.get(pk=created.pk)
