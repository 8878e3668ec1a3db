"""DEPLOYMENT CREATE: deploy parsed resources on partition 1, and the distribution of a
deployment to the other partitions (the same command, with `DistributeDeployment`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from engine import records
from engine.bpmn.model import EventType
from engine.processing.command import Command, MappingFailure, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.decisions import (
    PlannedRequirements,
    deployment_metadata,
    plan_decisions,
    version_together,
    write_decision_records,
)
from engine.processing.registry import processor
from engine.processing.state import remember_models
from engine.processing.triggers.messages import open_start_subscriptions
from engine.processing.triggers.signals import open_start_subscriptions as open_signal_start_subscriptions
from engine.processing.triggers.timers import cancel_timer, create_timer, evaluate_timer, start_event_timers
from engine.records import INVALID_ARGUMENT, deployment_value, process_metadata, process_value


@dataclass(slots=True)
class DeployResources:
    """What the gateway parsed: (name, content) per resource and its process models."""

    resources: list[tuple[str, bytes]]
    parsed: list[list[Any]]
    #: The DMN resources among them: (name, content, parsed DRG); their `parsed` entry is [].
    decisions: list[tuple[str, bytes, Any]] = field(default_factory=list)


@dataclass(slots=True)
class DistributeDeployment:
    """A deployment of partition 1 written on another partition (keys unchanged)."""

    deployment_key: int
    deployment: dict[str, Any]
    processes: list[dict[str, Any]]
    decisions: list[PlannedRequirements] = field(default_factory=list)


@processor("DEPLOYMENT", "CREATE")
def deploy(ctx: ProcessingContext, command: Command) -> dict[str, Any] | None:
    request = command.request
    if isinstance(request, DistributeDeployment):
        write_decision_records(ctx, request.decisions)
        write_deployment(ctx, request.deployment_key, request.deployment, request.processes)
        return None
    assert isinstance(request, DeployResources)
    processes: list[tuple[dict[str, Any], bool]] = []
    new_processes: list[dict[str, Any]] = []
    pending_versions: dict[str, int] = {}
    for (resource_name, content), models in zip(request.resources, request.parsed, strict=True):
        checksum = hashlib.md5(content, usedforsecurity=False).digest()  # Zeebe checksum (§3.4)
        checksum_b64 = records.b64(checksum)
        remember_models(checksum_b64, models)
        for model in models:
            latest = ctx.state.latest_process(model.bpmn_process_id)
            if (
                latest is not None
                and latest.checksum == checksum_b64
                and latest.resource_name == resource_name
            ):
                processes.append((latest.value, True))
                continue
            base = pending_versions.get(model.bpmn_process_id, latest.version if latest else 0)
            version = base + 1
            pending_versions[model.bpmn_process_id] = version
            value = process_value(
                bpmn_process_id=model.bpmn_process_id,
                version=version,
                process_definition_key=ctx.state.new_key(),
                resource_name=resource_name,
                resource=content,
                checksum=checksum,
                duplicate=False,
                deployment_key=-1,
            )
            processes.append((value, False))
            new_processes.append(value)
    planned = plan_decisions(ctx, request.decisions)
    if new_processes or not all(plan.duplicate for plan in planned):
        # Zeebe versions the resources of a deployment together (decisions.version_together)
        version_together(ctx, planned)
    deployment_key = ctx.state.new_key()
    for value in new_processes:
        value["deploymentKey"] = deployment_key
    deployment = deployment_value(
        resources=[
            {"resourceName": name, "resource": records.b64(content)} for name, content in request.resources
        ],
        processes_metadata=[process_metadata(value, duplicate) for value, duplicate in processes],
        deployment_key=deployment_key,
    )
    deployment["decisionsMetadata"], deployment["decisionRequirementsMetadata"] = deployment_metadata(planned)
    write_processes(ctx, new_processes)
    schedule_start_timers(ctx, new_processes)
    open_start_subscriptions(ctx, new_processes)
    # signal start events listen on the deployment partition only (one instance per broadcast)
    open_signal_start_subscriptions(ctx, new_processes)
    write_decision_records(ctx, planned)
    ctx.emit("DEPLOYMENT", "CREATED", deployment_key, deployment)
    return {"key": deployment_key, "value": deployment, "newProcesses": new_processes, "decisions": planned}


def write_deployment(
    ctx: ProcessingContext,
    deployment_key: int,
    deployment: dict[str, Any],
    new_processes: list[dict[str, Any]],
) -> None:
    write_processes(ctx, new_processes)
    # message start events listen on every partition (any may be a message partition)
    open_start_subscriptions(ctx, new_processes)
    ctx.emit("DEPLOYMENT", "CREATED", deployment_key, deployment)


def write_processes(ctx: ProcessingContext, new_processes: list[dict[str, Any]]) -> None:
    for value in new_processes:
        if value["processDefinitionKey"] not in ctx.state.processes:
            ctx.emit("PROCESS", "CREATED", value["processDefinitionKey"], dict(value))


def schedule_start_timers(ctx: ProcessingContext, new_processes: list[dict[str, Any]]) -> None:
    """Timer start events are armed at deployment, on the deployment partition only, and a new
    version disarms the previous versions' (reference §5.2 "Timers")."""
    now = ctx.now()
    for value in new_processes:
        process_id = value["bpmnProcessId"]
        model = ctx.state.model(value["processDefinitionKey"])
        starts = model.start_events_of(EventType.TIMER)
        for older in list(ctx.state.process_versions.get(process_id, {}).values()):
            if older != value["processDefinitionKey"]:
                for timer in start_event_timers(ctx, older):
                    cancel_timer(ctx, timer)
        for start in starts:
            try:
                due = evaluate_timer(start, {}, now)
            except MappingFailure as failure:
                raise Rejection(
                    "CREATE",
                    INVALID_ARGUMENT,
                    f"Expected to deploy new resources, but encountered the following errors:\n"
                    f"'{value['resourceName']}': Element: {start.id}: {failure.message}",
                ) from None
            create_timer(
                ctx,
                owner=None,
                process_definition_key=value["processDefinitionKey"],
                catch_event=start,
                due=due,
            )
