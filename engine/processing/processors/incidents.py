"""INCIDENT RESOLVE: resolve, and re-attempt the step that failed (reference §1.3)."""

from __future__ import annotations

from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.incidents import raise_incident
from engine.processing.registry import processor
from engine.processing.transitions import run_activation, run_completion
from engine.processing.triggers.errors import throw_end_event_error
from engine.records import INVALID_STATE, NOT_FOUND


@processor("INCIDENT", "RESOLVE")
def resolve(ctx: ProcessingContext, command: Command) -> None:
    incident_key = command.key
    incident = ctx.state.incidents.get(incident_key)
    if incident is None:
        raise Rejection(
            "RESOLVE",
            NOT_FOUND,
            f"Expected to resolve incident with key '{incident_key}', but no such incident was found",
        )
    job_key = incident.job_key
    if job_key > 0:
        job = ctx.state.jobs.get(job_key)
        if job is not None and job.retries <= 0:
            raise Rejection(
                "RESOLVE",
                INVALID_STATE,
                f"Expected to resolve incident with key '{incident_key}', but job with key '{job_key}' has no "
                f"retries left. Update the job retries first.",
            )
    ctx.emit("INCIDENT", "RESOLVED", incident_key, dict(incident.value))
    if job_key > 0:
        return
    instance = ctx.state.element_instances.get(incident.element_instance_key)
    if instance is None:
        return
    # Re-attempt the step that failed, with the current variables.
    if instance.state == "ELEMENT_ACTIVATING":
        run_activation(ctx, instance.key)
    elif instance.state == "ELEMENT_COMPLETING":
        run_completion(ctx, instance.key, None)
    elif incident.error_type == "UNHANDLED_ERROR_EVENT" and instance.element_type == "END_EVENT":
        try:
            throw_end_event_error(ctx, instance, ctx.element_of(instance))
        except Exception as failure:  # an error code expression that fails again
            raise_incident(ctx, instance, "EXTRACT_VALUE_ERROR", str(failure))
    ctx.drain()
