"""Incident behaviour: raise an incident on an element instance, resolve the ones it holds."""

from __future__ import annotations

from engine.processing.context import ProcessingContext
from engine.processing.state import ElementInstance
from engine.records import incident_value


def raise_incident(
    ctx: ProcessingContext, instance: ElementInstance, error_type: str, message: str, job_key: int = -1
) -> int:
    key = ctx.state.new_key()
    ctx.emit(
        "INCIDENT",
        "CREATED",
        key,
        incident_value(
            error_type=error_type,
            error_message=message,
            bpmn_process_id=instance.bpmn_process_id,
            process_definition_key=instance.process_definition_key,
            process_instance_key=instance.process_instance_key,
            element_id=instance.element_id,
            element_instance_key=instance.key,
            job_key=job_key,
        ),
    )
    return key


def resolve_incidents_of(ctx: ProcessingContext, element_instance_key: int) -> None:
    # An element is stuck in at most one incident at a time: the index is enough.
    incident_key = ctx.state.element_incidents.get(element_instance_key)
    if incident_key is not None and incident_key in ctx.state.incidents:
        ctx.emit("INCIDENT", "RESOLVED", incident_key, dict(ctx.state.incidents[incident_key].value))
