"""JOB commands (complete, fail, throw error, update retries/timeout, time out, recur after
backoff, yield) and JOB_BATCH ACTIVATE."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from engine import records
from engine.processing.command import Command, Rejection
from engine.processing.context import ProcessingContext
from engine.processing.incidents import raise_incident
from engine.processing.registry import processor
from engine.processing.state import ACTIVATABLE, ACTIVATED, Job, ProcessInfo
from engine.processing.transitions import queue_complete
from engine.processing.triggers.errors import throw_error, unhandled_error_message
from engine.processing.variables import set_local_variables
from engine.records import INVALID_ARGUMENT, INVALID_STATE, NOT_FOUND
from engine.values import MAX_MESSAGE_BYTES

#: Job deadlines are int64 milliseconds on the wire: `now + timeout` is clamped to fit, so a
#: client asking for "forever" (timeout 2^63-1) gets the latest representable deadline.
MAX_DEADLINE_MS = 2**63 - 1
#: A job whose activated form would exceed this is never offered (see `_fail_too_large_job`);
#: JOB_FIELDS_BYTES is generous room for its fields besides variables and headers.
JOB_FIELDS_BYTES = 2 * 1024
MAX_JOB_BYTES = MAX_MESSAGE_BYTES - 32 * 1024


def _job(
    ctx: ProcessingContext,
    job_key: int,
    intent: str,
    verb: str,
    allowed: tuple[str, ...] = (ACTIVATABLE, ACTIVATED),
) -> Job:
    job = ctx.state.jobs.get(job_key)
    if job is None:
        raise Rejection(
            intent, NOT_FOUND, f"Expected to {verb} job with key '{job_key}', but no such job was found"
        )
    if job.state not in allowed:
        raise Rejection(
            intent,
            INVALID_STATE,
            f"Expected to {verb} job with key '{job_key}', but it is in state '{job.state}'",
        )
    return job


@processor("JOB", "COMPLETE")
def complete(ctx: ProcessingContext, command: Command) -> None:
    job_key = command.key
    variables = command.value.get("variables", {})
    job = _job(ctx, job_key, "COMPLETE", "complete")
    value = dict(job.value)
    value["variables"] = variables
    ctx.emit("JOB", "COMPLETED", job_key, value)
    queue_complete(ctx, value["elementInstanceKey"], variables)


@dataclass(slots=True)
class FailJob:
    retries: int
    error_message: str
    backoff: int
    variables: dict[str, Any] = field(default_factory=dict)


@processor("JOB", "FAIL")
def fail(ctx: ProcessingContext, command: Command) -> None:
    request: FailJob = command.request
    job_key, retries, backoff = command.key, request.retries, request.backoff
    job = _job(ctx, job_key, "FAIL", "fail")
    value = dict(job.value)
    value.update(
        retries=retries,
        errorMessage=request.error_message,
        retryBackoff=backoff if retries > 0 else 0,
        recurringTime=ctx.now() + backoff if retries > 0 and backoff > 0 else -1,
        variables=request.variables,
    )
    ctx.emit("JOB", "FAILED", job_key, value)
    instance = ctx.state.element_instances.get(value["elementInstanceKey"])
    if instance is not None and request.variables:
        # FailJob variables are set local to the task scope (reference §1.3).
        set_local_variables(ctx, instance.key, request.variables, ProcessInfo.of(instance))
    if retries <= 0 and instance is not None:
        raise_incident(
            ctx, instance, "JOB_NO_RETRIES", request.error_message or "No more retries left.", job_key=job_key
        )


@dataclass(slots=True)
class ThrowJobError:
    error_code: str
    error_message: str
    variables: dict[str, Any] = field(default_factory=dict)


@processor("JOB", "THROW_ERROR")
def throw(ctx: ProcessingContext, command: Command) -> None:
    request: ThrowJobError = command.request
    job_key = command.key
    job = _job(ctx, job_key, "THROW_ERROR", "throw an error for")
    value = dict(job.value)
    value.update(
        errorCode=request.error_code, errorMessage=request.error_message, variables=request.variables
    )
    ctx.emit("JOB", "ERROR_THROWN", job_key, value)
    element_instance_key = value["elementInstanceKey"]
    instance = ctx.state.element_instances.get(element_instance_key)
    if instance is None:
        return
    if not throw_error(ctx, element_instance_key, request.error_code, request.variables):
        message = unhandled_error_message(
            ctx, element_instance_key, request.error_code, request.error_message
        )
        raise_incident(ctx, instance, "UNHANDLED_ERROR_EVENT", message, job_key=job_key)


@processor("JOB", "UPDATE_RETRIES")
def update_retries(ctx: ProcessingContext, command: Command) -> None:
    job_key, retries = command.key, command.value["retries"]
    job = ctx.state.jobs.get(job_key)
    if job is None:
        raise Rejection(
            "UPDATE_RETRIES",
            NOT_FOUND,
            f"Expected to update retries for job with key '{job_key}', but no such job was found",
        )
    if retries < 1:
        raise Rejection(
            "UPDATE_RETRIES",
            INVALID_ARGUMENT,
            f"Expected to update retries for job with key '{job_key}' with a positive amount of retries, but the "
            f"amount given was '{retries}'",
        )
    value = dict(job.value)
    value["retries"] = retries
    ctx.emit("JOB", "RETRIES_UPDATED", job_key, value)


@processor("JOB", "UPDATE_TIMEOUT")
def update_timeout(ctx: ProcessingContext, command: Command) -> None:
    job_key, timeout = command.key, command.value["timeout"]
    job = ctx.state.jobs.get(job_key)
    if job is None:
        raise Rejection(
            "UPDATE_TIMEOUT",
            NOT_FOUND,
            f"Expected to update job with key '{job_key}', but no such job was found",
        )
    if job.state != ACTIVATED:
        raise Rejection(
            "UPDATE_TIMEOUT",
            INVALID_STATE,
            f"Expected to update the timeout of job with key '{job_key}', but it is not active",
        )
    value = dict(job.value)
    value.update(deadline=min(ctx.now() + timeout, MAX_DEADLINE_MS), timeout=timeout)
    ctx.emit("JOB", "TIMEOUT_UPDATED", job_key, value)


@processor("JOB", "TIME_OUT")
def time_out(ctx: ProcessingContext, command: Command) -> bool:
    job = ctx.state.jobs.get(command.key)
    if job is None or job.state != ACTIVATED or job.value["deadline"] > ctx.now():
        return False
    ctx.emit("JOB", "TIMED_OUT", job.key, dict(job.value))
    return True


@processor("JOB", "YIELD")
def yield_job(ctx: ProcessingContext, command: Command) -> bool:
    """An activated job that was never delivered becomes activatable again (JOB YIELDED)."""
    job = ctx.state.jobs.get(command.key)
    if job is None or job.state != ACTIVATED:
        return False
    value = dict(job.value)
    value.update(worker="", deadline=-1)
    ctx.emit("JOB", "YIELDED", job.key, value)
    return True


@processor("JOB", "RECUR_AFTER_BACKOFF")
def recur(ctx: ProcessingContext, command: Command) -> bool:
    job = ctx.state.jobs.get(command.key)
    if job is None or job.key not in ctx.state.backoffs or job.value["recurringTime"] > ctx.now():
        return False
    ctx.emit("JOB", "RECURRED_AFTER_BACKOFF", job.key, dict(job.value))
    return True


@dataclass(slots=True)
class ActivateJobs:
    job_type: str
    worker: str
    timeout: int
    max_jobs: int
    fetch_variables: list[str] = field(default_factory=list)


@processor("JOB_BATCH", "ACTIVATE")
def activate(ctx: ProcessingContext, command: Command) -> list[dict[str, Any]]:
    request: ActivateJobs = command.request
    queue = ctx.state.activatable.get(request.job_type)
    if not queue:
        return []
    keys = []
    for job_key in queue:
        keys.append(job_key)
        if len(keys) >= request.max_jobs:
            break
    deadline = min(ctx.now() + request.timeout, MAX_DEADLINE_MS)
    jobs = []
    texts = []
    fitting = []
    too_large = []
    for job_key in keys:
        value = dict(ctx.state.jobs[job_key].value)
        variables = ctx.state.visible_variables(value["elementInstanceKey"])
        if request.fetch_variables:
            variables = {name: variables[name] for name in request.fetch_variables if name in variables}
        text = json.dumps(variables)  # exactly what the gateway sends (ActivatedJob.variables)
        size = len(text) + len(json.dumps(value["customHeaders"])) + JOB_FIELDS_BYTES
        if size > MAX_JOB_BYTES:
            too_large.append((job_key, size))
            continue
        value.update(worker=request.worker, deadline=deadline, timeout=request.timeout, variables=variables)
        jobs.append(value)
        texts.append(text)
        fitting.append(job_key)
    if fitting:
        batch = {
            "type": request.job_type,
            "worker": request.worker,
            "timeout": request.timeout,
            "maxJobsToActivate": request.max_jobs,
            "jobKeys": fitting,
            "jobs": jobs,
            "truncated": False,
            "tenantIds": [records.DEFAULT_TENANT],
        }
        ctx.emit("JOB_BATCH", "ACTIVATED", ctx.state.new_key(), batch)
    for job_key, size in too_large:
        _fail_too_large_job(ctx, job_key, size)
    return [
        dict(job, key=job_key, variablesJson=text)
        for job_key, job, text in zip(fitting, jobs, texts, strict=True)
    ]


def _fail_too_large_job(ctx: ProcessingContext, job_key: int, size: int) -> None:
    """A job no client could receive (Zeebe: MESSAGE_SIZE_EXCEEDED): out of the activatable
    queue, with an incident instead of being offered, and refused, for ever."""
    job = ctx.state.jobs[job_key]
    message = (
        f"The job with key '{job_key}' cannot be activated: with its variables it needs about {size} bytes, "
        f"more than the maximum message size of {MAX_MESSAGE_BYTES} bytes. Reduce the variables (or use "
        f"fetchVariables), update the job's retries and resolve this incident."
    )
    value = dict(job.value)
    value.update(retries=0, errorMessage=message, retryBackoff=0, recurringTime=-1, deadline=-1)
    ctx.emit("JOB", "FAILED", job_key, value)
    instance = ctx.state.element_instances.get(value["elementInstanceKey"])
    if instance is not None:
        raise_incident(ctx, instance, "MESSAGE_SIZE_EXCEEDED", message, job_key=job_key)
