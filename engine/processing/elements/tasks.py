"""Tasks: job-based tasks (service, job-based user, send, script, business rule task) create a
job and wait for it; undefined and manual tasks pass straight through."""

from __future__ import annotations

from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate, evaluate_int, evaluate_string
from engine.processing.registry import behavior
from engine.processing.state import ACTIVATABLE, ACTIVATED, ERROR_THROWN, FAILED, ElementInstance
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import BaseBehavior, queue_complete, take_completion_variables
from engine.processing.variables import apply_input_mappings
from engine.records import job_value
from engine.values import json_text


# BUSINESS_RULE_TASK: elements/business_rule_tasks.py (a job-based one is run by this behaviour from there)
@behavior("SERVICE_TASK", "USER_TASK", "SEND_TASK", "SCRIPT_TASK")
class JobTaskBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        if element.job_type is None:  # not job-based: nothing to wait for
            variables = take_completion_variables(ctx, instance.key)
            if element.script_expression is not None:
                # zeebe:script (Zeebe's ScriptTaskProcessor): the FEEL result goes to
                # resultVariable through the completion, like a job's variables
                result = evaluate(
                    element.script_expression,
                    ctx.state.visible_variables(instance.key),
                    "EXTRACT_VALUE_ERROR",
                )
                variables = {element.result_variable: result}
            ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
            queue_complete(ctx, instance.key, variables)
            return
        job = job_of(ctx, instance, element)  # evaluated before anything is written
        open_subscriptions(ctx, instance, element)
        ctx.emit("JOB", "CREATED", ctx.state.new_key(), job)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
        super().complete(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        cancel_job(ctx, instance)
        close_subscriptions(ctx, instance, element)


@behavior("TASK", "MANUAL_TASK")
class PassThroughTaskBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        apply_input_mappings(ctx, instance, element)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        queue_complete(ctx, instance.key, take_completion_variables(ctx, instance.key))


def job_of(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> dict[str, Any]:
    """The JOB value of the element's job (type, retries and headers evaluated now)."""
    variables = ctx.state.visible_variables(instance.key)
    job_type = evaluate_string(element.job_type, variables, "EXTRACT_VALUE_ERROR")
    retries = 3
    retries_expression = element.job_retries
    if retries_expression is not None:
        retries = evaluate_int(retries_expression, variables, "EXTRACT_VALUE_ERROR")
        if not -(2**31) <= retries < 2**31:  # an int32 on the wire (ActivatedJob.retries)
            raise MappingFailure(
                "EXTRACT_VALUE_ERROR",
                f"Expected result of the expression '{retries_expression.text}' to be a number of retries "
                f"that fits in 32 bits, but was '{retries}'.",
            )
    headers = dict(element.task_headers)
    for name, expression in element.user_task_header_expressions.items():
        if expression.is_static:
            continue
        header = evaluate(expression, variables, "EXTRACT_VALUE_ERROR")
        if header is None:
            continue
        headers[name] = header if isinstance(header, str) else json_text(header)
    return job_value(
        job_type=job_type,
        retries=retries,
        custom_headers=headers,
        element_id=instance.element_id,
        element_instance_key=instance.key,
        bpmn_process_id=instance.bpmn_process_id,
        process_definition_version=instance.version,
        process_definition_key=instance.process_definition_key,
        process_instance_key=instance.process_instance_key,
    )


def cancel_job(ctx: ProcessingContext, instance: ElementInstance) -> None:
    job = ctx.state.jobs.get(instance.job_key) if instance.job_key > 0 else None
    # A job whose error was caught is consumed by the catch; one whose error is stuck in an
    # UNHANDLED_ERROR_EVENT incident is still live and gets canceled like any other.
    if job is not None and (
        job.state in (ACTIVATABLE, ACTIVATED, FAILED)
        or (job.state == ERROR_THROWN and job.key in ctx.state.job_incidents)
    ):
        ctx.emit("JOB", "CANCELED", job.key, dict(job.value))
