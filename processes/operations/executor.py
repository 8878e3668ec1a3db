"""Running one claimed operation against its cluster through the routing client (DESIGN §6).

No database access here: the caller passes a snapshot of the operation and gets an
:class:`Outcome` back, which a service records. Zeebe's answers are sorted three ways:

* applied, or "already done" (the incident is already resolved, the instance or the step has
  already ended, the message id was already published): ``succeeded``, ``already_done`` set;
* the cluster cannot be reached now (down, unreachable, disabled or draining and gone, back
  pressure, a deadline): ``waiting``, retried later with backoff, never silently failed;
* everything else Zeebe refuses: ``failed``, with Zeebe's status and message verbatim.

Each multi-call action orders its calls so that only the last one is not idempotent, and the last
one answers "already done" when repeated (see the per-action comments), so a re-run after a crash
between the calls and the recording of the outcome changes nothing twice.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from pyzeebe.proto import gateway_pb2 as pb  # the one copy routing.client uses (reference §1.1)

from processes.operations.choices import OperationAction, OperationState
from routing.client import (
    ActivateInstruction,
    ClusterUnavailableError,
    GatewayError,
    Router,
    RoutingError,
)
from routing.keys import KeyCodecError

logger = logging.getLogger(__name__)

# gRPC codes after which the same call may well succeed later: the operation waits.
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # Zeebe back pressure
        grpc.StatusCode.DEADLINE_EXCEEDED,  # may have applied: the re-run meets "already done"
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)
# Zeebe's rejection of a terminate instruction whose element instance no longer exists
# (reference: ModifyProcessInstance rejections): the step already ended.
_TERMINATE_GONE = "terminate instructions with an element instance that could not be found"


@dataclass(frozen=True)
class OperationSnapshot:
    """What the executor needs of an Operation row."""

    id: int
    action: str
    target_key: int | None
    cluster_id: int | None
    parameters: Mapping[str, Any]
    attempts: int


@dataclass
class Outcome:
    operation_id: int
    state: OperationState
    result: str = ""
    error: str = ""
    error_code: str = ""
    already_done: bool = False
    retry_in: float | None = None  # seconds, for waiting
    progress: dict[str, Any] = field(default_factory=dict)


class _AlreadyDone(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def backoff_seconds(attempts: int, *, maximum: float) -> float:
    """0.5 s, 1 s, 2 s ... up to ``maximum``, with +-20% jitter so waiting operations spread out."""
    base = min(maximum, 0.5 * 2 ** max(0, min(attempts - 1, 16)))
    return float(base * random.uniform(0.8, 1.2))


def _run_retry(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    notes = []
    job_key = params.get("job_key")
    if job_key:
        # Idempotent: setting the same retries again changes nothing that matters.
        try:
            router.update_job_retries(int(job_key), int(params.get("retries", 1)))
            notes.append(f"job retries set to {params.get('retries', 1)}")
        except GatewayError as error:
            if error.code is not grpc.StatusCode.NOT_FOUND:
                raise
            # The job is gone (its step ended or was cancelled); the resolve below tells whether
            # the incident is gone too.
            notes.append("the job no longer exists")
    assert op.target_key is not None
    try:
        router.resolve_incident(op.target_key)
    except GatewayError as error:
        if error.code is grpc.StatusCode.NOT_FOUND:
            raise _AlreadyDone(f"incident already resolved: {error.details}") from None
        raise
    notes.append("incident resolved")
    return "; ".join(notes)


def _run_resolve(router: Router, op: OperationSnapshot) -> str:
    assert op.target_key is not None
    try:
        router.resolve_incident(op.target_key)
    except GatewayError as error:
        if error.code is grpc.StatusCode.NOT_FOUND:
            raise _AlreadyDone(f"incident already resolved: {error.details}") from None
        raise
    return "incident resolved"


def _run_skip(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    assert op.target_key is not None
    process_instance_key = int(params["process_instance_key"])
    flow_scope_key = params.get("flow_scope_key")
    # -1: the process instance is the flow scope (Zeebe picks its only instance).
    ancestor = int(flow_scope_key) if flow_scope_key and int(flow_scope_key) != process_instance_key else -1
    variables = params.get("variables") or None
    try:
        # One command: terminate the step and activate its successor. A worker completing the
        # step's job after this finds the job gone; a worker that completed it first makes this
        # command refer to an element instance that no longer exists (already done).
        router.modify_process_instance(
            process_instance_key,
            activate=[
                ActivateInstruction(
                    element_id=str(params["successor_id"]),
                    ancestor_element_instance_key=ancestor,
                    variables=variables,
                )
            ],
            terminate=[op.target_key],
        )
    except GatewayError as error:
        if error.code is grpc.StatusCode.NOT_FOUND:
            raise _AlreadyDone(f"process instance already ended: {error.details}") from None
        if error.code is grpc.StatusCode.INVALID_ARGUMENT and _TERMINATE_GONE in error.details:
            raise _AlreadyDone(f"step already ended: {error.details}") from None
        raise
    return f"step terminated, '{params['successor_id']}' activated"


def _run_reassign(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    assert op.target_key is not None
    # 1. Idempotent: the local variables the assignee-aware workers read (workers.py).
    router.set_variables(op.target_key, params["variables"], local=True)
    notes = [f"local variables {json.dumps(params['variables'], sort_keys=True)} set"]
    job_key = params.get("job_key")
    if job_key:
        # 2. Release the step's job so the worker for the new assignee can take it: a fail that
        # keeps the retries (no retry is used up). Repeated, it may release the job from a worker
        # of the *new* assignee once; the job stays with the right people, nothing is lost.
        try:
            router.fail_job(
                int(job_key),
                retries=max(1, int(params.get("job_retries") or 1)),
                error_message=f"released by operator {params.get('actor', '')}: reassigned",
                retry_backoff_ms=0,
            )
            notes.append("job released")
        except GatewayError as error:
            if error.code not in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.INVALID_ARGUMENT,
            ):
                raise
            notes.append(f"job not released: {error.details}")
    return "; ".join(notes)


def _run_cancel(router: Router, op: OperationSnapshot) -> str:
    assert op.target_key is not None
    try:
        router.cancel_process_instance(op.target_key)
    except GatewayError as error:
        if error.code is grpc.StatusCode.NOT_FOUND:
            raise _AlreadyDone(f"process instance already ended: {error.details}") from None
        raise
    return "process instance cancelled"


def _run_set_variables(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    assert op.target_key is not None
    document_key = router.set_variables(op.target_key, params["variables"], local=bool(params.get("local")))
    return f"variables set on scope {op.target_key} (variable document {document_key})"


def _run_update_retries(router: Router, op: OperationSnapshot) -> str:
    assert op.target_key is not None
    retries = int(op.parameters["retries"])
    router.update_job_retries(op.target_key, retries)
    return f"job retries set to {retries}"


def _run_publish(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    try:
        message_key = router.publish_message(
            str(params["name"]),
            str(params["correlation_key"]),
            variables=params.get("variables") or None,
            time_to_live_ms=int(params.get("time_to_live_ms") or 0),
            # Zeebe refuses a second message with the same id while the first is buffered (TTL > 0),
            # so a re-run does not publish twice. With TTL 0 nothing is buffered to compare with.
            message_id=f"fleetflow-operation-{op.id}",
        )
    except GatewayError as error:
        if error.code is grpc.StatusCode.ALREADY_EXISTS:
            raise _AlreadyDone(f"message already published: {error.details}") from None
        raise
    return f"message published (key {message_key})"


def _job_gone(op: OperationSnapshot, error: GatewayError, what: str) -> None:
    """NOT_FOUND on a job by hand: on the first attempt someone else (its worker) ended the job
    first, so the operator's action did not happen (failed, Zeebe's answer verbatim). On a re-run
    after a lost outcome, this operation's own earlier call may be what ended it: already done."""
    if error.code is grpc.StatusCode.NOT_FOUND and op.attempts > 1:
        raise _AlreadyDone(f"job already {what} (earlier attempt or its worker): {error.details}") from None


def _run_complete_job(router: Router, op: OperationSnapshot) -> str:
    assert op.target_key is not None
    try:
        router.complete_job(op.target_key, op.parameters.get("variables") or None)
    except GatewayError as error:
        _job_gone(op, error, "completed")
        raise
    return "job completed by hand"


def _run_fail_job(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    assert op.target_key is not None
    # Repeating a fail with the same retries and message leaves the job as the first one did.
    router.fail_job(
        op.target_key,
        retries=int(params["retries"]),
        error_message=str(params["error_message"]),
        retry_backoff_ms=int(params.get("retry_backoff_ms") or 0),
    )
    retries = int(params["retries"])
    return f"job failed by hand, {retries} retries left" + (" (an incident opens)" if retries == 0 else "")


def _run_throw_error(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    assert op.target_key is not None
    try:
        router.throw_error(
            op.target_key,
            error_code=str(params["error_code"]),
            error_message=str(params.get("error_message") or ""),
            variables=params.get("variables") or None,
        )
    except GatewayError as error:
        _job_gone(op, error, "ended")
        raise
    return f"BPMN error '{params['error_code']}' thrown"


def _run_modify(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    assert op.target_key is not None
    try:
        # Zeebe checks the whole plan before applying any of it: a refusal changes nothing.
        router.modify_process_instance(
            op.target_key,
            activate=[
                ActivateInstruction(
                    element_id=str(item["element_id"]),
                    ancestor_element_instance_key=int(item["ancestor_key"] or -1),
                    variables=item.get("variables") or None,
                )
                for item in params["activate"]
            ],
            terminate=[int(key) for key in params["terminate"]],
        )
    except GatewayError as error:
        # A re-run after a lost outcome finds its own terminations done. On the first attempt the
        # same answers mean the instance moved on before the plan ran: refused, nothing changed.
        if op.attempts > 1 and (
            error.code is grpc.StatusCode.NOT_FOUND
            or (error.code is grpc.StatusCode.INVALID_ARGUMENT and _TERMINATE_GONE in error.details)
        ):
            raise _AlreadyDone(f"plan already applied: {error.details}") from None
        raise
    return f"plan applied: {len(params['activate'])} token(s) added, {len(params['terminate'])} cancelled"


# Zeebe's rejection of a mapping whose source element the instance does not have (reference:
# MigrateProcessInstance rejections): after a migration to other ids, the old ids are gone.
_SOURCE_GONE = "mapping instructions contain a non-existing source element id"


def _run_migrate(router: Router, op: OperationSnapshot) -> str:
    params = op.parameters
    assert op.target_key is not None
    request = pb.MigrateProcessInstanceRequest(processInstanceKey=op.target_key)
    request.migrationPlan.targetProcessDefinitionKey = int(params["target_process_definition_key"])
    for source_id, target_id in params["mapping"]:
        request.migrationPlan.mappingInstructions.add(sourceElementId=source_id, targetElementId=target_id)
    try:
        # Zeebe checks the whole plan before migrating anything: a refusal changes nothing. Sent
        # again after it applied, the same plan migrates the instance onto the definition it is
        # already on (the ids it maps stayed the same) or names ids it no longer has.
        router.call("MigrateProcessInstance", request)
    except GatewayError as error:
        if op.attempts > 1 and (
            error.code is grpc.StatusCode.NOT_FOUND
            or (error.code is grpc.StatusCode.INVALID_ARGUMENT and _SOURCE_GONE in error.details)
        ):
            raise _AlreadyDone(f"migration already applied: {error.details}") from None
        raise
    return (
        f"migrated to {params.get('bpmn_process_id', '')} version {params.get('target_version')} "
        f"(definition {params['target_process_definition_key']})"
    )


_RUNNERS: dict[str, Callable[[Router, OperationSnapshot], str]] = {
    OperationAction.RETRY: _run_retry,
    OperationAction.RESOLVE_INCIDENT: _run_resolve,
    OperationAction.SKIP: _run_skip,
    OperationAction.REASSIGN: _run_reassign,
    OperationAction.CANCEL: _run_cancel,
    OperationAction.SET_VARIABLES: _run_set_variables,
    OperationAction.UPDATE_RETRIES: _run_update_retries,
    OperationAction.PUBLISH_MESSAGE: _run_publish,
    OperationAction.COMPLETE_JOB: _run_complete_job,
    OperationAction.FAIL_JOB: _run_fail_job,
    OperationAction.THROW_ERROR: _run_throw_error,
    OperationAction.MODIFY: _run_modify,
    OperationAction.MIGRATE: _run_migrate,
}


def execute(router: Router, op: OperationSnapshot, *, max_backoff: float) -> Outcome:
    """Run one operation; never raises for a cluster's answer (it becomes the outcome)."""
    runner = _RUNNERS.get(op.action)
    if runner is None:
        return Outcome(op.id, OperationState.FAILED, error=f"unknown action {op.action!r}")
    try:
        result = runner(router, op)
    except _AlreadyDone as done:
        return Outcome(op.id, OperationState.SUCCEEDED, result=done.message, already_done=True)
    except ClusterUnavailableError as error:
        return Outcome(
            op.id,
            OperationState.WAITING,
            result=f"waiting: {error}",
            error_code=error.reason,
            retry_in=backoff_seconds(op.attempts, maximum=max_backoff),
        )
    except GatewayError as error:
        if error.code in TRANSIENT_CODES:
            return Outcome(
                op.id,
                OperationState.WAITING,
                result=f"waiting: {error.code.name}: {error.details}",
                error_code=error.code.name,
                retry_in=backoff_seconds(op.attempts, maximum=max_backoff),
            )
        return Outcome(op.id, OperationState.FAILED, error=error.details, error_code=error.code.name)
    except (KeyCodecError, RoutingError) as error:  # unknown cluster, invalid key: nothing to retry
        return Outcome(op.id, OperationState.FAILED, error=str(error), error_code=type(error).__name__)
    return Outcome(op.id, OperationState.SUCCEEDED, result=result)


def execute_many(
    router: Router, operations: Iterable[OperationSnapshot], *, max_backoff: float, threads: int = 8
) -> list[Outcome]:
    """Run operations concurrently (sync gRPC stubs are thread-safe). Once a cluster proved
    unreachable, the rest of its operations in this call wait without another call each."""
    unreachable: set[int] = set()
    operations = list(operations)

    def run(op: OperationSnapshot) -> Outcome:
        if op.cluster_id is not None and op.cluster_id in unreachable:
            return Outcome(
                op.id,
                OperationState.WAITING,
                result=f"waiting: cluster {op.cluster_id} was unreachable a moment ago",
                error_code="unreachable",
                retry_in=backoff_seconds(op.attempts, maximum=max_backoff),
            )
        outcome = execute(router, op, max_backoff=max_backoff)
        if outcome.state is OperationState.WAITING and op.cluster_id is not None:
            unreachable.add(op.cluster_id)
        return outcome

    if len(operations) <= 1:
        return [run(op) for op in operations]
    with ThreadPoolExecutor(max_workers=min(threads, len(operations))) as pool:
        return list(pool.map(run, operations))
